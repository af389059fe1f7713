"""`tierscale bench`: run a scenario file through the fleet simulator under several policies.

Prints a table and writes results.json, results.md and PNG plots to --out. The policies
are the production planner (`tierscale`), its no-spillover ablation (`isolated`) and the
baselines; see docs/benchmarks.md and docs/scenarios.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tierscale_sim import bench, report, runner, scenario

DEFAULT_TRACE_DIR = "../shared/traces"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="compare scaling policies on a scenario in the fleet simulator",
        description=__doc__,
    )
    parser.add_argument("--scenario", type=Path, required=True, help="scenario YAML file")
    parser.add_argument(
        "--policies",
        help="comma-separated subset of: "
        + ",".join(scenario.POLICY_NAMES)
        + " (default: the scenario's list)",
    )
    parser.add_argument("--seeds", type=int, help="number of seeds (default: the scenario's)")
    parser.add_argument(
        "--sweep", action="store_true", help="run every load multiplier of the scenario's sweep"
    )
    parser.add_argument(
        "--trace-dir",
        help="directory for ${TIERSCALE_TRACE_DIR} in trace paths "
        f"(default: $TIERSCALE_TRACE_DIR, else {DEFAULT_TRACE_DIR})",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.set_defaults(func=run)


def _policies(args: argparse.Namespace, spec: scenario.ScenarioSpec) -> list[str]:
    if not args.policies:
        return list(spec.policies)
    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in scenario.POLICY_NAMES]
    if unknown:
        raise scenario.ScenarioError(
            f"--policies: unknown {unknown}; expected some of {list(scenario.POLICY_NAMES)}"
        )
    return names


def run(args: argparse.Namespace) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # piped or captured: keep the table on one line per row
    err = Console(stderr=True)
    if args.trace_dir or "TIERSCALE_TRACE_DIR" not in os.environ:
        os.environ["TIERSCALE_TRACE_DIR"] = str(Path(args.trace_dir or DEFAULT_TRACE_DIR).resolve())
    try:
        if args.seeds is not None and args.seeds < 1:
            raise scenario.ScenarioError(f"--seeds: expected an integer >= 1, got {args.seeds}")
        spec = scenario.load_scenario(args.scenario)
        policies = _policies(args, spec)
        if args.sweep and spec.sweep is None:
            raise scenario.ScenarioError(
                f"scenario {args.scenario}: --sweep needs a `sweep:` section (rate_multipliers)"
            )
        setup = runner.prepare(spec, args.scenario)
    except scenario.ScenarioError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    seeds = list(range(args.seeds if args.seeds is not None else spec.seeds))
    multipliers = list(spec.sweep.rate_multipliers) if args.sweep and spec.sweep else [1.0]
    total = len(seeds) * len(multipliers) * len(policies)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(spec.name, total=total)

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=f"{spec.name}: {label}")

        result = bench.run_bench(setup, policies, seeds, multipliers, advance, time.perf_counter)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(bench.to_json(result), indent=2) + "\n")
    plots = report.write_plots(result, args.out)
    (args.out / "results.md").write_text(report.markdown_report(result, plots))
    console.print(report.rich_table(result))
    console.print(
        f"{total} runs in {time.perf_counter() - started:.0f} s; wrote results.json, "
        f"results.md and {len(plots)} plots to {args.out}"
    )
    return 0
