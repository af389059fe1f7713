#!/usr/bin/env bash
# Build, or reuse, the testbed's pinned Go tools into a version-keyed cache outside the repo:
#   ${TIERSCALE_CACHE:-$HOME/.cache/tierscale}/bin/<tool>-<version>
# Usage: build-binaries.sh [etcd|kwok|helm|kubernetes ...]   (default: all)
#
# Why this shape:
# - Versions come from e2e/tierscale_testbed/versions.env (also read by Python), and each
#   e2e/go/<module>/go.mod must pin the same version: checked below, so the cache key can
#   never lie about what a binary is.
# - A cold build of the control plane takes many minutes, so only missing binaries are built,
#   and each module's commands are built in ONE `go build` to share compilation.
# - Several people (and CI jobs) share one cache: a flock serialises builds, and every binary
#   is built into a temp dir and renamed into place, so nobody ever runs a half-written file.
# - CGO off: static binaries, no C toolchain needed on a new machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../e2e/tierscale_testbed/versions.env
source e2e/tierscale_testbed/versions.env

CACHE=${TIERSCALE_CACHE:-$HOME/.cache/tierscale}
BIN=$CACHE/bin
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$BIN"

exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  echo "build-binaries: waiting for another build holding $CACHE/build.lock"
  flock 9
fi

tmp=""
trap '[[ -n "$tmp" ]] && rm -rf "$tmp"' EXIT

# Go names a binary after its package's last path element, skipping a /vN major suffix.
out_name() {
  local pkg=$1 base=${1##*/}
  if [[ $base =~ ^v[0-9]+$ ]]; then
    pkg=${pkg%/*}
    base=${pkg##*/}
  fi
  echo "$base"
}

# Modules to build: all by default, or those named on the command line (etcd kwok helm kubernetes).
wanted=("$@")
want() {
  ((${#wanted[@]} == 0)) && return 0
  local m
  for m in "${wanted[@]}"; do [[ $m == "$1" ]] && return 0; done
  return 1
}

# build_module <module dir> <pinned module path> <version> <ldflags> <tool>=<package>...
build_module() {
  local dir=$1 mod=$2 version=$3 ldflags=$4
  shift 4
  want "${dir##*/}" || return 0
  local tools=() pkgs=() spec tool pinned start i
  for spec in "$@"; do
    tool=${spec%%=*}
    if [[ ! -x "$BIN/$tool-$version" ]]; then
      tools+=("$tool")
      pkgs+=("${spec#*=}")
    fi
  done
  if ((${#tools[@]} == 0)); then
    echo "build-binaries: reuse $mod $version"
    return 0
  fi
  if [[ ! -x "$GO" ]] && ! command -v "$GO" >/dev/null; then
    echo "build-binaries: Go not found (set GO=/path/to/go); it needs go >= 1.26 and the module proxy" >&2
    exit 1
  fi
  pinned=$(cd "$dir" && "$GO" list -m -f '{{.Version}}' "$mod")
  if [[ "$pinned" != "$version" ]]; then
    echo "build-binaries: $dir/go.mod pins $mod $pinned, versions.env says $version" >&2
    exit 1
  fi
  echo "build-binaries: building ${tools[*]} ($mod $version) with $("$GO" env GOVERSION)"
  start=$SECONDS
  tmp=$(mktemp -d "$BIN/.build-XXXXXX")
  (cd "$dir" && "$GO" build -trimpath -ldflags="$ldflags" -o "$tmp/" "${pkgs[@]}")
  for i in "${!tools[@]}"; do
    mv -f "$tmp/$(out_name "${pkgs[$i]}")" "$BIN/${tools[$i]}-$version"
  done
  rm -rf "$tmp"
  tmp=""
  echo "build-binaries: built ${tools[*]} in $((SECONDS - start)) s"
}

# Version stamps: kubectl/helm skew checks and `kubectl version` read these.
k8s_minor=${KUBERNETES_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
k8s_ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1"
  k8s_ldflags+=" -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done

total=$SECONDS
build_module e2e/go/etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "-s -w" \
  etcd=go.etcd.io/etcd/server/v3
build_module e2e/go/kwok sigs.k8s.io/kwok "$KWOK_VERSION" \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION" \
  kwok=sigs.k8s.io/kwok/cmd/kwok kwokctl=sigs.k8s.io/kwok/cmd/kwokctl
build_module e2e/go/helm helm.sh/helm/v4 "$HELM_VERSION" \
  "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  helm=helm.sh/helm/v4/cmd/helm
build_module e2e/go/kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION" "$k8s_ldflags" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
  kubectl=k8s.io/kubernetes/cmd/kubectl
echo "build-binaries: all binaries present in $BIN ($((SECONDS - total)) s)"
