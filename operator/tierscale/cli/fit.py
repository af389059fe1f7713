"""`tierscale fit`: fit a latency model from measurements and write it as JSON.

Inputs (one of):
  --profile FILE.csv   step records (prefill_tokens, decode_seqs, context_tokens, step_s)
                       or a load sweep (concurrency and/or rate_rps, tpot_s, optional
                       prompt_tokens, output_tokens, ttft_s; means per load level);
  --bench-json FILE..  `vllm bench serve --save-result` files, one load level each;
  --prometheus-dir DIR scrapes of a replica's /metrics saved as <unix seconds>.prom.
A sweep with lengths and TTFT, bench results and scrapes fit TTFT and TPOT together,
starting from --base-profile, and report the error at every load level with that level
held out. Bad input exits 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tierscale.cli import calibrate
from tierscale_predictor import fit, latency, modelfile, profilecsv, profiles, requestfit


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "fit",
        help="fit a latency model from step records or a load sweep CSV",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", type=Path, help="measurement CSV file")
    source.add_argument("--bench-json", type=Path, nargs="+", help="vllm bench serve results")
    source.add_argument("--prometheus-dir", type=Path, help="<unix seconds>.prom scrapes")
    parser.add_argument("--out", type=Path, required=True, help="model JSON to write")
    parser.add_argument(
        "--base-profile",
        "--limits-from",
        dest="limits_from",
        metavar="PROFILE",
        help="bundled profile to start from: its limits, KV capacity, tail constants and "
        "physically derived terms are kept, the rest fitted "
        f"({', '.join(profiles.bundled_profile_names())}); default: vLLM defaults, or "
        "llama-3.1-8b-h100 for request-level fits",
    )
    parser.add_argument(
        "--knee",
        type=int,
        action="append",
        default=None,
        help="candidate decode knee (sequences) for step records; repeat to let held-out "
        "error choose (default: no knee)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        base = _base_model(args.limits_from)
        started = time.perf_counter()
        levels = _levels(args)
        if levels is not None:
            return _fit_levels(args, levels, base, started)
        data = profilecsv.read_profile_csv(args.profile)
        result = _fit(data, args, base)
        elapsed_s = time.perf_counter() - started
    except (fit.FitError, requestfit.RequestFitError) as error:
        where = args.profile or args.bench_json or args.prometheus_dir
        err.print(f"[red]error:[/red] {where}: {error}", highlight=False, soft_wrap=True)
        return 2
    except (profilecsv.CsvInputError, profiles.ProfileError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    try:
        modelfile.save_model(result.model, args.out)
    except OSError as error:
        err.print(
            f"[red]error:[/red] cannot write {args.out}: {error.strerror}",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    _print_report(result.report, args.profile, args.out, elapsed_s)
    return 0


def _levels(args: argparse.Namespace) -> list[requestfit.LevelData] | None:
    """Request-level inputs, or None for a step-record / TPOT-only CSV."""
    if args.bench_json:
        return profilecsv.read_bench_results(args.bench_json)
    if args.prometheus_dir is not None:
        return profilecsv.read_prometheus_scrapes(args.prometheus_dir)
    data = profilecsv.read_profile_csv(args.profile)
    sweep = data.sweep
    if sweep is None or sweep.ttft_s is None or sweep.prompt_tokens is None:
        if sweep is not None and sweep.concurrency is not None and sweep.rate_rps is not None:
            raise profilecsv.CsvInputError(
                f"{args.profile}: a sweep with both concurrency and rate_rps rows needs "
                "prompt_tokens, output_tokens and ttft_s (a request-level fit)"
            )
        return None
    return profilecsv.sweep_levels(sweep, origin=str(args.profile))


def _fit_levels(
    args: argparse.Namespace,
    levels: list[requestfit.LevelData],
    base: latency.LatencyModel | None,
    started: float,
) -> int:
    start = base or latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    fitted_at = datetime.now(UTC).isoformat(timespec="seconds")
    source = str(args.profile or args.prometheus_dir or args.bench_json[0].parent)
    result = requestfit.fit_levels(levels, base=start, source=source, fitted_at=fitted_at)
    try:
        modelfile.save_model(result.model, args.out)
    except OSError as error:
        Console(stderr=True).print(
            f"[red]error:[/red] cannot write {args.out}: {error.strerror}", soft_wrap=True
        )
        return 2
    console = Console()
    calibrate.report_fit(console, result.report)
    console.print(
        f"{len(levels)} levels fitted in {time.perf_counter() - started:.2f} s; wrote {args.out}",
        highlight=False,
    )
    return 0


def _base_model(name: str | None) -> latency.LatencyModel | None:
    if name is None:
        return None
    return latency.LatencyModel.from_profile(profiles.load_profile(name))


def _fit(
    data: profilecsv.ProfileData, args: argparse.Namespace, base: latency.LatencyModel | None
) -> fit.FitResult:
    rng = np.random.default_rng(args.seed)
    fitted_at = datetime.now(UTC).isoformat(timespec="seconds")
    source = f"{data.kind}:{args.profile.name}"
    if data.steps is not None:
        knees = tuple(args.knee) if args.knee else (0,)
        return fit.fit_steps(
            data.steps,
            rng=rng,
            base=base,
            knee_candidates=knees,
            source=source,
            fitted_at=fitted_at,
        )
    assert data.sweep is not None
    return fit.fit_sweep(data.sweep, rng=rng, base=base, source=source, fitted_at=fitted_at)


def _print_report(report: fit.FitReport, src: Path, out: Path, elapsed_s: float) -> None:
    console = Console()
    split = "in-sample (too few rows to hold out)" if report.in_sample else "held-out"
    table = Table(title=f"fit of {report.target} from {src} ({report.kind})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row(
        "rows (train / test)", f"{report.rows} ({report.train_rows} / {report.test_rows})"
    )
    table.add_row(f"R^2 ({split})", f"{report.r2:.4f}")
    table.add_row(f"MAPE ({split})", f"{100 * report.mape:.2f} %")
    if report.decode_knee_seqs:
        table.add_row("decode knee (seqs)", str(report.decode_knee_seqs))
    for name, value in report.coefficients:
        table.add_row(name, f"{value:.4g}")
    table.add_row("fit time", f"{elapsed_s:.2f} s")
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {out}", highlight=False)
