"""`tierscale rules`: print, write or check the Prometheus recording rules.

Generated from the adapter's own query definitions, so a rules file that passes `--check`
records exactly what the operator would otherwise query raw.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from tierscale.adapters.prometheus import queries, rules

MAX_DIFF_LINES = 40


def _duration(text: str) -> float:
    try:
        return queries.parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="generate the Prometheus recording rules the operator can query",
        description=(
            "Print the recording rules for a metrics window (the operator's "
            "TIERSCALE_METRICS_WINDOW_S), write them (--out) or check a file (--check)."
        ),
    )
    parser.add_argument(
        "--window", type=_duration, default=60.0, help="metrics window, e.g. 60s or 1m"
    )
    parser.add_argument(
        "--interval",
        type=_duration,
        default=None,
        help="rule evaluation interval (default: Prometheus' global evaluation_interval)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--out", type=Path, default=None, help="write the rules to this file")
    target.add_argument(
        "--check", type=Path, default=None, help="exit 1 if this file differs from the rules"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = rules.render(args.window, args.interval)
    if args.check is not None:
        return _check(args.check, text, rules.command_line(args.window, args.interval))
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out: Path = args.out
    if out.is_dir():
        print(f"tierscale rules: --out {out} is a directory", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _check(path: Path, expected: str, command: str) -> int:
    actual = path.read_text(encoding="utf-8") if path.is_file() else ""
    if actual == expected:
        print(f"ok {path}")
        return 0
    diff = list(
        difflib.unified_diff(
            actual.splitlines(), expected.splitlines(), str(path), "generated", lineterm=""
        )
    )
    state = "missing" if not path.is_file() else "differs"
    print(f"DRIFT {path}: {state}", file=sys.stderr)
    for line in diff[:MAX_DIFF_LINES]:
        print(line, file=sys.stderr)
    if len(diff) > MAX_DIFF_LINES:
        print(f"... {len(diff) - MAX_DIFF_LINES} more diff lines", file=sys.stderr)
    print(f"regenerate it: {command} --out {path}", file=sys.stderr)
    return 1
