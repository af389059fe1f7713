#!/usr/bin/env bash
# `make demo`: the live cluster demo (README's main job). Builds or reuses what it needs,
# saying how long the first build takes, then runs `python -m tierscale_testbed.demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
started=$(date +%s)
missing=$("$PY" -c 'from tierscale_testbed.binaries import missing_binaries as m; print(len(m()))')
if [[ "$missing" != "0" ]]; then
  echo "demo: first run: building the testbed's Kubernetes control plane (kube-apiserver,"
  echo "      controller-manager, scheduler, kubectl), etcd, kwok and helm from source with Go."
  echo "      This takes about 25 minutes on 2 cores, once: the binaries are cached in"
  echo "      ${TIERSCALE_CACHE:-$HOME/.cache/tierscale}/bin for every later run."
  ( while sleep 30; do echo "demo:   still building... $(( ($(date +%s) - started) / 60 )) min"; done ) &
  ticker=$!
  trap 'kill "$ticker" 2>/dev/null || true' EXIT
  bash scripts/testbed/install-system-deps.sh
  bash scripts/testbed/build-binaries.sh
  kill "$ticker" 2>/dev/null || true
  echo "demo: binaries built in $(( $(date +%s) - started )) s"
else
  bash scripts/testbed/install-system-deps.sh
  echo "demo: reusing the testbed binaries in ${TIERSCALE_CACHE:-$HOME/.cache/tierscale}/bin"
fi
exec "$PY" -m tierscale_testbed.demo "$@"
