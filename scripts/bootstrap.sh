#!/usr/bin/env bash
# Create .venv and install tierscale with its dev tools. Idempotent: reinstalls only when
# pyproject.toml changed since the last successful install (stamp in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
stamp="$VENV/.tierscale-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
echo "$want" > "$stamp"
