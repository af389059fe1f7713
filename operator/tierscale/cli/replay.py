"""`tierscale replay RECORD.json`: recompute a recorded decision and say whether it is identical.

A decision record (written by the operator with `TIERSCALE_RECORD_DIR`, or by the
simulator) holds every input of one `planner.plan` call and its result. Replaying runs
the same call on this tierscale; exit 0 when the plan (decisions, routing, state handed
on) is identical, 1 when it differs (the differing fields are printed), 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from tierscale import records
from tierscale.cli.plan import solver_output_to_stderr


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay", help="recompute a recorded decision and compare", description=__doc__
    )
    parser.add_argument("records", type=Path, nargs="+", help="decision record JSON file(s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    code = 0
    for path in args.records:
        try:
            record = records.loads(records.DecisionRecord, path.read_text())
        except OSError as error:
            err.print(f"[red]error:[/red] {path}: cannot read: {error.strerror}")
            return 2
        except records.RecordError as error:
            err.print(f"[red]error:[/red] {path}: {error}")
            return 2
        with solver_output_to_stderr():
            replayed = records.replay(record)
        diffs = records.differences(replayed, record.plan)
        if not diffs:
            out.print(
                f"{path}: identical ({record.record_id}, {len(record.plan.decisions)} tiers, "
                f"recorded by tierscale {record.tierscale_version})"
            )
            continue
        code = 1
        out.print(f"{path}: [red]differs[/red] ({record.record_id}) in {len(diffs)} field(s):")
        for line in diffs[:20]:
            out.print(f"  {line}")
    return code
