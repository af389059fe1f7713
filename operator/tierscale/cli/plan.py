"""`tierscale plan`: run the production planner on files, print the decision and its reasons.

The same `planner.plan()` the operator calls, so a decision seen in a cluster can be
replayed from its inputs (tiers, observations, model) on a laptop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tierscale import records
from tierscale.api import codec
from tierscale.domain.plans import Plan
from tierscale.domain.tiers import Tier
from tierscale.policy import planner
from tierscale_predictor import latency, modelfile, profiles

DEFAULT_PROFILE = "llama-3.1-8b-h100"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "plan",
        help="plan replicas and spillover for SLOTiers from an observations file",
        description=__doc__,
    )
    parser.add_argument("--tiers", type=Path, required=True, help="YAML file of SLOTier manifests")
    parser.add_argument(
        "--observations",
        type=Path,
        required=True,
        help="PlanRequest JSON: now_s, observations, optional budget, state and conflicts "
        "(docs/planner.md)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="fitted latency model JSON (tierscale fit)")
    source.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"bundled step-time profile when no --model is given (default {DEFAULT_PROFILE})",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, soft_wrap=True)
    try:
        tiers = codec.load_tiers_yaml(args.tiers)
        request = load_request(args.observations)
        model = _load_model(args)
    except (codec.SpecError, records.RecordError, modelfile.ModelFileError, KeyError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        return 2
    with solver_output_to_stderr():
        result = planner.plan(
            tiers=tiers,
            observations=request.observations,
            model=model,
            now_s=request.now_s,
            state=request.state,
            budget=request.budget,
            conflicts=request.conflicts,
            invalid=request.invalid,
        )
    if args.json:
        json.dump(records.to_jsonable(result), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_plan(result, tiers)
    return 0


@contextlib.contextmanager
def solver_output_to_stderr() -> Iterator[None]:
    """HiGHS sometimes prints a debug line straight to file descriptor 1 (HiGHS#2783);
    keep stdout clean for `--json` by pointing descriptor 1 at stderr while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _load_model(args: argparse.Namespace) -> latency.LatencyModel:
    if args.model is not None:
        return modelfile.load_model(args.model)
    return latency.LatencyModel.from_profile(profiles.load_profile(args.profile))


def load_request(path: Path) -> records.PlanRequest:
    """Read a PlanRequest file; errors name the file, and the line or the field."""
    try:
        text = path.read_text()
    except OSError as err:
        raise records.RecordError(f"{path}: cannot read: {err.strerror}") from err
    try:
        return records.loads(records.PlanRequest, text)
    except records.RecordError as err:
        where = f"{path}:" if str(err)[:1].isdigit() else f"{path}: "
        raise records.RecordError(f"{where}{err}") from err


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _print_plan(result: Plan, tiers: list[Tier]) -> None:
    console = Console()
    slo_by_key = {t.key: t.slo for t in tiers}
    table = Table(title=f"tierscale plan at t={result.decided_at_s:.0f}s", title_justify="left")
    for column in (
        "tier",
        "SLO ttft/tpot",
        "replicas",
        "need",
        "forecast",
        "cap/replica",
        "spill out/in now",
        "unserved",
        "pred ttft/tpot",
        "routing",
        "reason",
    ):
        table.add_column(column, overflow="fold")
    for key, d in sorted(result.decisions.items()):
        slo = slo_by_key[key]
        routing = ", ".join(
            f"{pool.split('/')[-1]} {share:.0%}" for pool, share in d.weights_by_pool.items()
        )
        table.add_row(
            key,
            f"{_ms(slo.ttft_s)} / {_ms(slo.tpot_s)}",
            str(d.desired_replicas),
            "-" if d.needed_replicas is None else str(d.needed_replicas),
            f"{d.forecast_rate_rps:.2f} rps",
            f"{d.capacity_rps_per_replica:.2f} rps",
            f"{d.spill_out_rps:.2f} / {d.spill_in_rps:.2f}",
            f"{d.unserved_rate_rps:.2f}",
            f"{_ms(d.predicted_ttft_s)} / {_ms(d.predicted_tpot_s)}",
            routing,
            d.reason.value,
        )
    console.print(table)
    for key, d in sorted(result.decisions.items()):
        console.print(f"[bold]{key}[/bold]: {d.message}", highlight=False)
    limited = " (budget-limited)" if result.budget_limited else ""
    console.print(f"total GPUs: {result.total_gpus}{limited}; solver: {result.solver_status}")
