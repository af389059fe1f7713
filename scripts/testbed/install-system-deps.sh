#!/usr/bin/env bash
# Install the testbed's system packages (Debian's Prometheus + promtool). Idempotent: does
# nothing when /usr/bin/prometheus exists, so warm runs never touch apt. Called by
# `make testbed-binaries`; needs root (or sudo) only on the first run.
set -euo pipefail
if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends prometheus
/usr/bin/prometheus --version | head -n 1
