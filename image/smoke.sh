#!/usr/bin/env bash
# Smoke-test a built image (`make image` runs it; `make image-smoke` alone): unpack the
# oci-archive with umoci, check its config (non-root user, entrypoint), and run the
# image's own binaries as that user in a chroot of its root filesystem:
# `tierscale --version`, `tierscale run --help`, `envoy --version`.
# Exit 1 with the failing step named if anything is off.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${TIERSCALE_CACHE:-$HOME/.cache/tierscale}
WORK="$CACHE/image"
PY=${PY:-.venv/bin/python}
version=$("$PY" -c 'import importlib.metadata as m; print(m.version("tierscale"))')
archive=${1:-$WORK/tierscale-$version.oci.tar}
if [[ ! -f "$archive" ]]; then
  echo "no image at $archive: run \`make image\` first" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/tierscale-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/layout"
tar -C "$tmp/layout" -xf "$archive"
umoci unpack --image "$tmp/layout:$version" "$tmp/bundle" >/dev/null

config="$tmp/bundle/config.json"
"$PY" - "$config" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1]))
user = spec["process"]["user"]
args = spec["process"]["args"]
assert user["uid"] != 0 and user["gid"] != 0, f"image runs as root: {user}"
assert args[:2] == ["/opt/tierscale/bin/tierscale", "run"], f"entrypoint/cmd: {args}"
print(f"config: uid {user['uid']}, args {' '.join(args)}")
EOF

rootfs="$tmp/bundle/rootfs"
uid=$("$PY" -c 'import json, sys
u = json.load(open(sys.argv[1]))["process"]["user"]
print("%d:%d" % (u["uid"], u["gid"]))' "$config")
# As a container runtime would: its own mount namespace with /proc and a tmpfs /dev/shm.
in_image() {
  env -i PATH=/opt/tierscale/bin:/usr/local/bin:/usr/bin:/bin HOME=/tmp \
    unshare --mount --fork sh -c \
    'mount -t proc proc "$0/proc" && mount -t tmpfs shm "$0/dev/shm" && exec "$@"' \
    "$rootfs" "$(command -v chroot)" --userspec="$uid" "$rootfs" "$@"
}

echo "--- tierscale --version"
in_image tierscale --version | tee "$tmp/version"
grep -q "tierscale $version" "$tmp/version"
echo "--- tierscale run --help (first lines)"
in_image tierscale run --help > "$tmp/run-help"
head -n 3 "$tmp/run-help"
grep -q "usage: tierscale run" "$tmp/run-help"
echo "--- envoy --version"
in_image envoy --version > "$tmp/envoy-version"
grep -o 'version: [^ ]*' "$tmp/envoy-version"
echo "smoke ok: $archive"
