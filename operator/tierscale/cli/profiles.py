"""`tierscale profiles`: the bundled step-time profiles, with GPU, model, vLLM version and
sources. Any of them can be named wherever a model is needed (`tierscale predict
--profile NAME`, `tierscale fit --base-profile NAME`, `tierscale calibrate --base-profile`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from tierscale_predictor import profiles


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "profiles", help="list the bundled latency profiles and their sources", description=__doc__
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--sources", action="store_true", help="print every source in full")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in profiles.bundled_profile_names():
        p = profiles.load_profile(name)
        rows.append(
            {
                "name": name,
                "gpu": p.gpu,
                "model": p.model,
                "vllm_version": p.vllm_version or "unknown",
                "step_floor_s": p.base_s,
                "output_s_per_token": p.output_s_per_token,
                "request_overhead_s": p.request_overhead_s,
                "compute_s_per_token": p.compute_s_per_token,
                "sources": list(p.sources),
            }
        )
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title="bundled profiles (tierscale predict --profile NAME)")
    for col in ("name", "GPU", "model", "vLLM", "step floor", "per output token"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["gpu"]),
            str(r["model"]),
            str(r["vllm_version"]),
            f"{1e3 * r['step_floor_s']:.2f} ms",
            f"{1e3 * r['output_s_per_token']:.2f} ms",
        )
    console = Console()
    console.print(table)
    for r in rows:
        console.print(f"sources of {r['name']}:", highlight=False)
        for source in r["sources"]:
            text = source if args.sources or len(source) <= 110 else source[:107] + "..."
            console.print(f"  - {text}", highlight=False, soft_wrap=True)
    return 0
