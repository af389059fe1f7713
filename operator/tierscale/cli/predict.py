"""`tierscale predict`: predicted TTFT and TPOT of one replica from a fitted model or a
bundled profile (`tierscale profiles` lists them).

At a concurrency (closed loop, what `vllm bench serve --max-concurrency N` measures: mean
TTFT and TPOT), or at a Poisson rate with --rate (TTFT and TPOT at --percentile). The
JSON output's `statistic` says which: "mean", or "pNN" for the percentile asked for.

Request lengths are fixed by default: every request has exactly --prompt-tokens and
--output-tokens, as `vllm bench serve --random-input-len P --random-output-len O` sends
them. `--lengths lognormal` (or giving --prompt-p99 / --output-p99) makes them lognormal
through those means and p99s; a p99 not given is then the model's assumed spread (prompt
p99 ~3.4x the mean, output ~6x), which is what the planner does for a tier whose p99 it
has not observed, and what sets tail latencies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tierscale_predictor import latency, modelfile, profiles

DEFAULT_PROMPT_TOKENS = 1024
DEFAULT_OUTPUT_TOKENS = 256


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "predict", help="predict TTFT and TPOT of one replica", description=__doc__
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="model JSON (tierscale fit / calibrate)")
    source.add_argument(
        "--profile",
        metavar="NAME",
        help=f"bundled profile ({', '.join(profiles.bundled_profile_names())})",
    )
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--concurrency", type=_positive_int, help="concurrent requests (closed loop)")
    load.add_argument("--rate", type=_positive_float, help="Poisson request rate (req/s)")
    parser.add_argument("--prompt-tokens", type=_positive_int, default=DEFAULT_PROMPT_TOKENS)
    parser.add_argument("--output-tokens", type=_positive_int, default=DEFAULT_OUTPUT_TOKENS)
    parser.add_argument(
        "--lengths",
        choices=("fixed", "lognormal"),
        default=None,
        help="request length distribution (default fixed; lognormal if a p99 is given)",
    )
    parser.add_argument(
        "--prompt-p99", type=_positive_int, default=None, help="p99 prompt tokens (lognormal)"
    )
    parser.add_argument(
        "--output-p99", type=_positive_int, default=None, help="p99 output tokens (lognormal)"
    )
    parser.add_argument(
        "--percentile", type=float, default=99.0, help="percentile for --rate (default 99)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        if args.profile is not None:
            model = latency.LatencyModel.from_profile(profiles.load_profile(args.profile))
        else:
            model = modelfile.load_model(args.model)
    except (modelfile.ModelFileError, profiles.ProfileError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
    if not 0.0 < args.percentile < 100.0:
        err.print(
            f"[red]error:[/red] --percentile must be in (0, 100), got {args.percentile}",
            soft_wrap=True,
        )
        return 2
    shape, problem = _shape(args)
    if shape is None:
        err.print(f"[red]error:[/red] {problem}", soft_wrap=True)
        return 2
    if args.concurrency is not None:
        pred = latency.predict_at_concurrency(
            model, args.concurrency, args.prompt_tokens, args.output_tokens
        )
        load = {"concurrency": args.concurrency, "statistic": "mean"}
    else:
        pred = latency.predict(model, args.rate, shape, args.percentile)
        load = {"rate_rps": args.rate, "statistic": f"p{args.percentile:g}"}
    result = {
        **load,
        "prompt_tokens": args.prompt_tokens,
        "output_tokens": args.output_tokens,
        "lengths": "fixed" if _is_fixed(shape) else "lognormal",
        "prompt_tokens_p99": shape.prompt_tokens_tail,
        "output_tokens_p99": shape.output_tokens_p99,
        "ttft_s": pred.ttft_s if pred.stable else None,
        "tpot_s": pred.tpot_s if pred.stable else None,
        "mean_batch": pred.mean_batch,
        "busy_frac": pred.busy_frac,
        "stable": pred.stable,
        "model": model.name or model.provenance.source,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(result)
    return 0


def _shape(args: argparse.Namespace) -> tuple[latency.WorkloadShape | None, str]:
    """The request lengths asked for, or None and what is wrong."""
    p99_given = args.prompt_p99 is not None or args.output_p99 is not None
    lengths = args.lengths or ("lognormal" if p99_given else "fixed")
    if lengths == "fixed" and p99_given:
        return None, "--prompt-p99/--output-p99 describe lognormal lengths: drop --lengths fixed"
    for name, p99, mean in (
        ("--prompt-p99", args.prompt_p99, args.prompt_tokens),
        ("--output-p99", args.output_p99, args.output_tokens),
    ):
        if p99 is not None and p99 <= mean:
            return None, f"{name} must be above the mean ({mean}), got {p99}"
    prompt, output = float(args.prompt_tokens), float(args.output_tokens)
    if lengths == "fixed":
        return latency.WorkloadShape(prompt, output, prompt, output), ""
    return latency.WorkloadShape(
        prompt,
        output,
        None if args.prompt_p99 is None else float(args.prompt_p99),
        None if args.output_p99 is None else float(args.output_p99),
    ), ""


def _is_fixed(shape: latency.WorkloadShape) -> bool:
    return (
        shape.prompt_tokens_p99 == shape.prompt_tokens_mean
        and shape.output_tokens_p99 == shape.output_tokens_mean
    )


def _print(result: dict[str, Any]) -> None:
    table = Table(title=f"predicted latency ({result['statistic']}) for {result['model']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("concurrency", "rate_rps", "prompt_tokens", "output_tokens", "lengths"):
        if key in result:
            table.add_row(key, str(result[key]))
    if result["lengths"] == "lognormal":
        output_p99 = result["output_tokens_p99"]
        table.add_row("prompt p99 (tokens)", f"{result['prompt_tokens_p99']:.0f}")
        table.add_row(
            "output p99 (tokens)", "assumed" if output_p99 is None else f"{output_p99:.0f}"
        )
    if result["stable"]:
        table.add_row("TTFT", f"{1000 * result['ttft_s']:.1f} ms")
        table.add_row("TPOT", f"{1000 * result['tpot_s']:.2f} ms")
    else:
        table.add_row("TTFT / TPOT", "unbounded: the load exceeds the replica's capacity")
    table.add_row("mean batch (seqs)", f"{result['mean_batch']:.1f}")
    table.add_row("busy fraction", f"{result['busy_frac']:.3f}")
    Console().print(table)
