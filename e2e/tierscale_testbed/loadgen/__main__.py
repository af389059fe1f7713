"""``python -m tierscale_testbed.loadgen``: replay a trace or a pattern, report per tier."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from tierscale_testbed.loadgen import client, report, runner, stats, workload


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tierscale_testbed.loadgen",
        description="Open-loop streaming load with tier headers, loopback only, bounded.",
    )
    p.add_argument("--target", required=True, help="base URL, e.g. http://127.0.0.1:10000")
    p.add_argument("--path", default="/v1/completions")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--trace", type=Path, help="CSV arrived_at,num_prefill_tokens,num_decode_tokens"
    )
    src.add_argument("--pattern", help="poisson:RATE_RPS or step:RATE1/RATE2/...:STEP_S")
    p.add_argument("--trace-start-s", type=float, default=0.0, help="skip trace rows before")
    p.add_argument("--time-scale", type=float, default=1.0, help="2 = replay twice as fast")
    p.add_argument("--max-requests", type=int, default=1000)
    p.add_argument("--max-duration-s", type=float, default=60.0, help="of sending, wall clock")
    p.add_argument("--drain-timeout-s", type=float, default=60.0)
    p.add_argument("--prompt-tokens", type=int, default=512, help="synthetic patterns only")
    p.add_argument("--output-tokens", type=int, default=64, help="synthetic patterns only")
    p.add_argument("--tier-mix", default="default=1", help="e.g. gold=0.2,silver=0.8")
    p.add_argument("--slo", default="", help="TIER=TTFT_S:TPOT_S,... for attainment")
    p.add_argument("--model", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    p.add_argument(
        "--requests-out",
        type=Path,
        default=None,
        help="also write one JSON line per request (tier, wall-clock send time, timings)",
    )
    return p


def _arrivals(args: argparse.Namespace, rng: np.random.Generator) -> list[workload.Arrival]:
    if args.trace is not None:
        return workload.read_trace(args.trace, start_s=args.trace_start_s)
    kind, _, rest = str(args.pattern).partition(":")
    sizes = {"prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens}
    # Generate only as far as the run can reach; the schedule cut does the rest.
    span_s = args.max_duration_s * args.time_scale
    if kind == "poisson":
        return workload.poisson_arrivals(float(rest), duration_s=span_s, rng=rng, **sizes)
    if kind == "step":
        rates, _, step = rest.rpartition(":")
        return workload.step_arrivals(
            [float(r) for r in rates.split("/")], step_s=float(step), rng=rng, **sizes
        )
    raise SystemExit(f"unknown pattern {args.pattern!r}: use poisson:RATE or step:R1/R2:STEP_S")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        url = client.ensure_loopback(args.target.rstrip("/") + args.path)
    except client.NotLoopbackError as error:
        parser.error(str(error))
    rng = np.random.default_rng(args.seed)
    specs = workload.schedule(
        _arrivals(args, rng),
        mix=workload.parse_mix(args.tier_mix),
        bounds=workload.Bounds(args.max_requests, args.max_duration_s),
        time_scale=args.time_scale,
        rng=rng,
    )
    result = asyncio.run(
        runner.run(url, specs, drain_timeout_s=args.drain_timeout_s, model=args.model)
    )
    summaries = stats.summarize(result.results, stats.parse_slos(args.slo))
    sent = len(result.results)
    report.print_table(
        summaries,
        title=f"{sent} requests in {result.wall_s:.1f} s ({sent / result.wall_s:.1f} req/s)",
    )
    if args.json is not None:
        payload = stats.to_json(
            summaries, wall_s=result.wall_s, sent=sent, send_lag_s_max=result.send_lag_s_max
        )
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.requests_out is not None:
        _write_requests(args.requests_out, result)
    return 0 if all(r.ok for r in result.results) else 1


def _write_requests(path: Path, result: runner.RunResult) -> None:
    """Per request: what the client saw, with its send time on the wall clock, so a test
    can count the requests inside any server-side window."""
    with path.open("w", encoding="utf-8") as out:
        for r in result.results:
            record = {
                "index": r.index,
                "tier": r.tier,
                "sent_at_unix_s": result.sent_at_unix_s.get(r.index),
                "ok": r.ok,
                "output_tokens": r.output_tokens,
                "ttft_s": r.ttft_s,
                "tpot_s": r.tpot_s,
                "e2e_s": r.e2e_s,
            }
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    sys.exit(main())
