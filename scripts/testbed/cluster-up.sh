#!/usr/bin/env bash
# Start a testbed cluster by hand (it outlives this script). Prints `export KUBECONFIG=...`.
# Shape via env: TIERSCALE_GPU_NODES, TIERSCALE_GPUS_PER_NODE, TIERSCALE_COLD_START_S, ...
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${VENV:-.venv}/bin/python" -m tierscale_testbed.cluster up "$@"
