"""`tierscale chart`: write (or check) every generated file of the Helm chart.

The chart's templates are hand-written; what they read (CRDs, RBAC rules, settings,
recording rules, dashboards, the values schema and README) is generated from the code it
must agree with (`tierscale.chart.generate`), and `--check` is the drift test CI runs.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("charts/tierscale")
SECURITY_DOC = "../../docs/security.md"
"""Relative to the chart: the user docs' copy of the RBAC table (kept when present)."""
DASHBOARDS_DOC = "../../docs/dashboards.md"
"""Relative to the chart: the user docs' panel reference (kept when present)."""
GENERATED_DIRS = ("crds", "dashboards", "files/recording-rules")
"""Directories holding only generated files: anything else in them is stale."""
MAX_DIFF_LINES = 30


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chart",
        help="generate the Helm chart's CRDs, RBAC, values schema, rules and dashboards",
        description=(
            "Regenerate the generated files of the Helm chart in --dir (default "
            f"{DEFAULT_DIR}), or check them (--check: exit 1 on any difference)."
        ),
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the chart directory")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file drifted")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tierscale.chart import generate

    chart_dir: Path = args.dir
    values_path = chart_dir / "values.yaml"
    if not values_path.is_file():
        print(f"tierscale chart: {values_path} not found (is --dir a chart?)", file=sys.stderr)
        return 2
    try:
        files = generate.rendered_files(values_path.read_text(encoding="utf-8"))
        for doc, update in (
            (SECURITY_DOC, generate.with_rbac_table),
            (DASHBOARDS_DOC, generate.with_panels_table),
        ):
            if (chart_dir / doc).is_file():
                files[doc] = update((chart_dir / doc).read_text(encoding="utf-8"))
    except ModuleNotFoundError as err:
        print(
            f"tierscale chart: {err.name} is missing; install the development extra "
            "(pip install 'tierscale[dashboards]')",
            file=sys.stderr,
        )
        return 2
    stale = [
        str(path.relative_to(chart_dir))
        for sub in GENERATED_DIRS
        if (chart_dir / sub).is_dir()
        for path in sorted((chart_dir / sub).iterdir())
        if str(path.relative_to(chart_dir)) not in files
    ]
    if args.check:
        return _check(chart_dir, files, stale)
    for rel, text in files.items():
        path = chart_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {os.path.normpath(path)}")
    for rel in stale:
        (chart_dir / rel).unlink()
        print(f"removed stale {chart_dir / rel}")
    return 0


def _check(chart_dir: Path, files: dict[str, str], stale: list[str]) -> int:
    from tierscale.chart import generate

    drifted = generate.drifted(chart_dir, files)
    for rel in drifted:
        path = chart_dir / rel
        actual = path.read_text(encoding="utf-8") if path.is_file() else ""
        print(f"DRIFT {path}: {'differs' if path.is_file() else 'missing'}", file=sys.stderr)
        diff = list(
            difflib.unified_diff(
                actual.splitlines(), files[rel].splitlines(), str(path), "generated", lineterm=""
            )
        )
        for line in diff[:MAX_DIFF_LINES]:
            print(line, file=sys.stderr)
    for rel in stale:
        print(f"STALE {chart_dir / rel}: not generated any more", file=sys.stderr)
    if drifted or stale:
        print(f"regenerate: tierscale chart --dir {chart_dir}", file=sys.stderr)
        return 1
    print(f"ok {chart_dir}: {len(files)} generated files up to date")
    return 0
