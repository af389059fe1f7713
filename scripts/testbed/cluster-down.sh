#!/usr/bin/env bash
# Stop clusters started by cluster-up.sh and any orphan of a killed test run (processes by
# their recorded pids, then the run directory). Pass names to stop exactly those clusters.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${VENV:-.venv}/bin/python" -m tierscale_testbed.cluster down "$@"
