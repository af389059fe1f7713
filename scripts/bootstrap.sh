#!/usr/bin/env bash
# Create .venv and install tierscale with its dev tools, the fleet simulator (sim/) and the
# e2e testbed (e2e/), each an editable distribution of its own. Idempotent: reinstalls only
# when one of their pyproject.toml files changed since the last successful install (stamp
# in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
stamp="$VENV/.tierscale-installed"
want=$(cat pyproject.toml sim/pyproject.toml e2e/pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The simulator's `ray` extra (a 79 MB wheel, 240 MB installed, ~16 s from the pip cache)
# is installed so that the Ray executor's test runs instead of skipping.
"$VENV/bin/python" -m pip install --quiet -e '.[dev]' -e './sim[ray]' -e ./e2e
echo "$want" > "$stamp"
