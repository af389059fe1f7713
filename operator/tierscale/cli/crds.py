"""`tierscale crds`: write (or check) the CRDs generated from the API models.

`--check` exists so CI and humans can prove crds/ is what the models say, the same
comparison the drift test makes.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from tierscale.api.crd import rendered_files

DEFAULT_DIR = Path("crds")
MAX_DIFF_LINES = 40


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="generate the SLOTier CRD from the API models",
        description=(
            "Print the SLOTier CustomResourceDefinition, write it into a directory (--out), "
            "or check that a directory holds exactly what the models generate (--check)."
        ),
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="directory to write CRD files into (e.g. crds)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 if the files in --out (default {DEFAULT_DIR}/) differ from the models",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = rendered_files()
    if args.check:
        return _check(args.out or DEFAULT_DIR, files)
    if args.out is None:
        sys.stdout.write("---\n".join(files.values()))
        return 0
    out: Path = args.out
    if out.exists() and not out.is_dir():
        print(f"tierscale crds: --out {out} exists and is not a directory", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


def _check(directory: Path, files: dict[str, str]) -> int:
    drifted = 0
    for name, expected in files.items():
        path = directory / name
        actual = path.read_text(encoding="utf-8") if path.is_file() else ""
        if actual == expected:
            print(f"ok {path}")
            continue
        drifted += 1
        diff = list(
            difflib.unified_diff(
                actual.splitlines(),
                expected.splitlines(),
                fromfile=str(path),
                tofile=f"{name} (generated)",
                lineterm="",
            )
        )
        changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        state = "missing" if not path.is_file() else f"{changed} changed lines"
        print(f"DRIFT {path}: {state}", file=sys.stderr)
        for line in diff[:MAX_DIFF_LINES]:
            print(line, file=sys.stderr)
        if len(diff) > MAX_DIFF_LINES:
            print(f"... {len(diff) - MAX_DIFF_LINES} more diff lines", file=sys.stderr)
    if drifted:
        print(
            f"{drifted} CRD file(s) drifted from the models: "
            f"run `tierscale crds --out {directory}`",
            file=sys.stderr,
        )
        return 1
    return 0
