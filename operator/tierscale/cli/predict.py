"""`tierscale predict`: predicted TTFT and TPOT of one replica from a fitted model or a
bundled profile (`tierscale profiles` lists them).

At a concurrency (closed loop, what `vllm bench serve --max-concurrency N` measures: mean
TTFT and TPOT), or at a Poisson rate with --rate (TTFT and TPOT at --percentile). The
JSON output's `statistic` says which: "mean", or "pNN" for the percentile asked for.
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
    if args.concurrency is not None:
        pred = latency.predict_at_concurrency(
            model, args.concurrency, args.prompt_tokens, args.output_tokens
        )
        load = {"concurrency": args.concurrency, "statistic": "mean"}
    else:
        shape = latency.WorkloadShape(float(args.prompt_tokens), float(args.output_tokens))
        pred = latency.predict(model, args.rate, shape, args.percentile)
        load = {"rate_rps": args.rate, "statistic": f"p{args.percentile:g}"}
    result = {
        **load,
        "prompt_tokens": args.prompt_tokens,
        "output_tokens": args.output_tokens,
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


def _print(result: dict[str, Any]) -> None:
    table = Table(title=f"predicted latency ({result['statistic']}) for {result['model']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("concurrency", "rate_rps", "prompt_tokens", "output_tokens"):
        if key in result:
            table.add_row(key, str(result[key]))
    if result["stable"]:
        table.add_row("TTFT", f"{1000 * result['ttft_s']:.1f} ms")
        table.add_row("TPOT", f"{1000 * result['tpot_s']:.2f} ms")
    else:
        table.add_row("TTFT / TPOT", "unbounded: the load exceeds the replica's capacity")
    table.add_row("mean batch (seqs)", f"{result['mean_batch']:.1f}")
    table.add_row("busy fraction", f"{result['busy_frac']:.3f}")
    Console().print(table)
