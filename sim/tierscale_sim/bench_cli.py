"""`tierscale bench`: run a scenario file through the fleet simulator under several policies.

Prints a table and writes results.json, results.md and PNG plots to --out. The policies
are the production planner (`tierscale`), its no-spillover ablation (`isolated`) and the
baselines; see docs/benchmarks.md and docs/scenarios.md. `--generate N --seed S` runs N
random scenarios instead (the generalisation benchmark). Runs fan out over every core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tierscale_sim import (
    bench,
    executors,
    generalisation,
    generate,
    report,
    runner,
    scenario,
)
from tierscale_sim.workloads import WorkloadError

DEFAULT_TRACE_DIR = "../shared/traces"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="compare scaling policies on a scenario in the fleet simulator",
        description=__doc__,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", type=Path, help="scenario YAML file")
    what.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="run N random scenarios (the generalisation benchmark) instead of a file",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="generator seed of --generate (default 0)"
    )
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
    parser.add_argument(
        "--executor",
        choices=executors.EXECUTORS,
        default="process",
        help="where runs go: processes on this machine (default), this process (serial),"
        " or Ray (the optional `ray` extra; --ray-address for an existing cluster)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help=f"parallel runs (default: every core, here {executors.default_jobs()})",
    )
    parser.add_argument("--ray-address", help="address of an existing Ray cluster")
    parser.add_argument(
        "--scenarios-from",
        type=Path,
        metavar="DIR",
        help="with --generate: run the scenario files an earlier run wrote (its"
        " OUT/scenarios) instead of drawing them again; for A/B runs of a predictor"
        " change, which also changes how the generator sizes scenarios",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.set_defaults(func=run)


def _policies(args: argparse.Namespace, default: list[str]) -> list[str]:
    if not args.policies:
        return list(default)
    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in scenario.POLICY_NAMES]
    if unknown:
        raise scenario.ScenarioError(
            f"--policies: unknown {unknown}; expected some of {list(scenario.POLICY_NAMES)}"
        )
    return names


def _fail(err: Console, error: Exception) -> int:
    err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
    return 2


def _check_numbers(args: argparse.Namespace) -> None:
    if args.seeds is not None and args.seeds < 1:
        raise scenario.ScenarioError(f"--seeds: expected an integer >= 1, got {args.seeds}")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise scenario.ScenarioError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if getattr(args, "generate", None) is not None:
        if args.generate < 1:
            raise scenario.ScenarioError(
                f"--generate: expected an integer >= 1, got {args.generate}"
            )
        if args.sweep:
            raise scenario.ScenarioError(
                "--sweep: only with --scenario (a generated scenario has no load sweep)"
            )
    elif getattr(args, "scenarios_from", None) is not None:
        raise scenario.ScenarioError("--scenarios-from: only with --generate")


def run(args: argparse.Namespace) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # piped or captured: keep the table on one line per row
    err = Console(stderr=True)
    if args.trace_dir or "TIERSCALE_TRACE_DIR" not in os.environ:
        os.environ["TIERSCALE_TRACE_DIR"] = str(Path(args.trace_dir or DEFAULT_TRACE_DIR).resolve())
    try:
        _check_numbers(args)
        if getattr(args, "generate", None) is not None:
            return _run_generated(args, console, err)
        spec = scenario.load_scenario(args.scenario)
        policies = _policies(args, spec.policies)
        if args.sweep and spec.sweep is None:
            raise scenario.ScenarioError(
                f"scenario {args.scenario}: --sweep needs a `sweep:` section (rate_multipliers)"
            )
        setup = runner.prepare(spec, args.scenario)
        seeds = list(range(args.seeds if args.seeds is not None else spec.seeds))
        multipliers = list(spec.sweep.rate_multipliers) if args.sweep and spec.sweep else [1.0]
        started = time.perf_counter()
        total = len(seeds) * len(multipliers) * len(policies)
        with _progress(err, spec.name, total) as progress:
            result = bench.run_bench(
                setup,
                policies,
                seeds,
                multipliers,
                progress,
                _executor(args),
                _jobs(args),
                getattr(args, "ray_address", None),
            )
    except (scenario.ScenarioError, WorkloadError, executors.ExecutorError) as error:
        return _fail(err, error)
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


def _executor(args: argparse.Namespace) -> str:
    return str(getattr(args, "executor", "process"))


def _jobs(args: argparse.Namespace) -> int:
    jobs = getattr(args, "jobs", None)
    return int(jobs) if jobs else executors.default_jobs()


def _run_generated(args: argparse.Namespace, console: Console, err: Console) -> int:
    """`--generate N --seed S`: the generalisation benchmark."""
    policies = _policies(args, list(generate.GENERATED_POLICIES))
    seeds = list(range(args.seeds or 1))
    generated = generate.generate(args.generate, args.seed)
    reused = getattr(args, "scenarios_from", None)
    if reused is not None:
        generated = generalisation.stored(generated, reused)
    setups = generalisation.write_scenarios(generated, args.out)
    total = len(setups) * len(seeds) * len(policies)
    label = f"{args.generate} random scenarios (seed {args.seed})"
    jobs = _jobs(args) if _executor(args) != "serial" else 1
    with _progress(err, label, total, with_scenario=True, setups=setups) as progress:
        result = generalisation.run(
            generated,
            setups,
            policies,
            seeds,
            seed=args.seed,
            executor=_executor(args),
            jobs=jobs,
            wall_s_fn=time.perf_counter,
            progress=progress,
            ray_address=getattr(args, "ray_address", None),
        )
    command = (
        f"tierscale bench --generate {args.generate} --seed {args.seed}"
        + (f" --policies {args.policies}" if args.policies else "")
        + (f" --seeds {args.seeds}" if args.seeds else "")
        + (f" --scenarios-from {reused}" if reused is not None else "")
        + f" --out {args.out}"
    )
    generalisation.write_all(result, args.out, command)
    console.print(generalisation.markdown(result, command, []).split("\n\nPer scenario")[0])
    console.print(f"wrote generalisation.json, generalisation.md and runs/ to {args.out}")
    return 0


class _Lines:
    """Progress as plain lines, one per finished run, for output that is not a terminal
    (a file, a CI log): what finished, how long it took, elapsed time and an ETA."""

    def __init__(self, err: Console, label: Callable[[executors.Task], str], total: int) -> None:
        self._err = err
        self._label = label
        self._total = total
        self._started = time.perf_counter()

    def __call__(self, done: executors.Done, n: int, total: int) -> None:
        elapsed = time.perf_counter() - self._started
        eta = elapsed / n * (total - n) if n else 0.0
        self._err.file.write(
            f"[{n}/{total}] {self._label(done.task)}: {done.wall_s:.1f} s"
            f" (elapsed {_clock(elapsed)}, ETA {_clock(eta)}); {_outcome(done.run)}\n"
        )
        self._err.file.flush()


def _outcome(run: executors.Outcome) -> str:
    if isinstance(run, executors.Failed):
        return "FAILED: " + run.error.strip().splitlines()[-1]
    score = run.score
    worst = min(score.by_tier.values(), key=lambda t: t.attainment_frac - t.target_frac)
    return (
        f"{'every tier met' if score.all_tiers_met else 'missed'},"
        f" worst tier {worst.tier_key.split('/')[-1]} {100 * worst.attainment_frac:.1f}%"
        f" (target {100 * worst.target_frac:g}%), {score.gpu_hours:.2f} GPU-h"
    )


def _clock(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"


@contextlib.contextmanager
def _progress(
    err: Console,
    title: str,
    total: int,
    *,
    with_scenario: bool = False,
    setups: list[runner.Setup] | None = None,
) -> Iterator[executors.ProgressFn]:
    """A live bar on a terminal, else one line per finished run (visible in a file)."""

    def label(task: executors.Task) -> str:
        where = f"{setups[task.setup].spec.name} " if with_scenario and setups else ""
        return f"{where}{task.policy} seed {task.seed} load x{task.multiplier:g}"

    if not err.is_terminal:
        err.file.write(f"{title}: {total} runs\n")
        err.file.flush()
        yield _Lines(err, label, total)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        bar_task = bar.add_task(title, total=total)

        def advance(done: executors.Done, n: int, total: int) -> None:
            bar.update(bar_task, advance=1, description=f"{title}: {label(done.task)}")

        yield advance
