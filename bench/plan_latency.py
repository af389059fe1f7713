"""Benchmark: wall time of one `planner.plan()` call for 2, 10, 20 and 50 tiers.

Run: `.venv/bin/python bench/plan_latency.py [--repeats N] [--out docs/benchmarks-core.md]`.
Each tier set mixes TTFT/TPOT SLOs so most tiers may spill onto tighter ones (the
expensive case: capacity for every allowed pair, MILP with all flows). Demand is drawn
from a seeded generator; every repeat perturbs it so no two calls see the same input.
Numbers are measured here, never asserted in tests. 200 plans per tier count by default:
a p99 of 40 is their slowest but one, and missed the rare slow MILPs (at 20 tiers, 40
plans gave a p99 of 107-151 ms and 200 plans 151-226 ms, docs/plan-latency.md).

`--clock process` times the process's own CPU (`time.process_time`) instead of the wall
clock: on a machine shared with other runs it excludes time spent waiting for a core,
so before/after comparisons are steadier. The latency target is on the wall clock.

`--digest` prints, per tier count, a SHA-256 over every plan the run made (each `Plan`'s
repr: every number, reason and message, and the state handed on): a speed change that
claims to change no decision shows the same digests before and after, on the very plans
it timed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.tiers import GpuBudget, Pool, Scaling, Slo, Tier
from tierscale.policy import planner
from tierscale_predictor import latency, profiles

TTFT_S = (0.3, 0.5, 1.0, 2.0, 5.0)
TPOT_S = (0.02, 0.03, 0.05, 0.1)


def make_tiers(count: int, rng: np.random.Generator) -> list[Tier]:
    return [
        Tier(
            name=f"tier-{i}",
            namespace="bench",
            model="llama",
            slo=Slo(float(rng.choice(TTFT_S)), float(rng.choice(TPOT_S))),
            pool=Pool(f"vllm-{i}", 0, 32, 1),
            priority=int(rng.integers(0, 5)),
            scaling=Scaling(cold_start_s=120.0),
        )
        for i in range(count)
    ]


def make_observations(tiers: list[Tier], rng: np.random.Generator, now_s: float) -> Observations:
    return Observations(
        {
            t.key: TierObservation(
                tier_key=t.key,
                sampled_at_s=now_s - 5.0,
                rate_rps=float(rng.uniform(0.5, 30.0)),
                window_s=60.0,
                prompt_tokens_mean=float(rng.choice((300.0, 1000.0, 2000.0))),
                output_tokens_mean=float(rng.choice((30.0, 200.0, 500.0))),
                current_replicas=int(rng.integers(0, 4)),
                rate_history_rps=tuple(
                    (now_s - 15.0 * k, float(rng.uniform(0.5, 30.0))) for k in range(20, 0, -1)
                ),
            )
            for t in tiers
        }
    )


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}


def measure(
    count: int,
    repeats: int,
    model: latency.LatencyModel,
    clock: Callable[[], float] = time.perf_counter,
    digest: hashlib._Hash | None = None,
) -> tuple[list[float], list[float]]:
    """Times of full-service plans and of budget-limited plans (ms), separately; each
    plan's repr is fed to `digest` when one is given (after the clock stops)."""
    rng = np.random.default_rng(count)
    tiers = make_tiers(count, rng)
    budget = GpuBudget(total_gpus=count * 3)
    served_ms: list[float] = []
    limited_ms: list[float] = []
    state = None
    for i in range(repeats):
        now_s = 1000.0 + 15.0 * i
        obs = make_observations(tiers, rng, now_s)
        start = clock()
        result = planner.plan(
            tiers=tiers, observations=obs, model=model, state=state, now_s=now_s, budget=budget
        )
        elapsed_ms = (clock() - start) * 1000.0
        (limited_ms if result.budget_limited else served_ms).append(elapsed_ms)
        if digest is not None:
            digest.update(repr(result).encode())
        state = result.state
    return served_ms, limited_ms


def _summary(samples: list[float]) -> str:
    if not samples:
        return "- / - / 0"
    p50 = statistics.median(samples)
    p99 = float(np.quantile(samples, 0.99))
    return f"{p50:.1f} ms / {p99:.1f} ms / {len(samples)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--repeats", type=int, default=200, help="plans per tier count (p99 needs a few hundred)"
    )
    parser.add_argument("--tiers", default="2,10,20,50")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--out", type=Path, help="write a markdown table here")
    parser.add_argument(
        "--digest", action="store_true", help="print a SHA-256 of every plan made, per tier count"
    )
    args = parser.parse_args()
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    rows = []
    for count in (int(c) for c in args.tiers.split(",")):
        digest = hashlib.sha256() if args.digest else None
        served, limited = measure(count, args.repeats, model, CLOCKS[args.clock], digest)
        everything = served + limited
        rows.append((count, _summary(everything), _summary(served), _summary(limited)))
        print(
            f"{count:3d} tiers: all {rows[-1][1]} | full service {rows[-1][2]} | "
            f"budget-limited {rows[-1][3]}"
            + (f" | plans {digest.hexdigest()[:16]}" if digest is not None else "")
        )
    if args.out:
        clock_flag = "" if args.clock == "wall" else f" --clock {args.clock}"
        lines = [
            "| tiers | all: p50 / p99 / n | full service: p50 / p99 / n "
            "| budget-limited: p50 / p99 / n |",
            "|---:|---|---|---|",
            *[f"| {c} | {a} | {b} | {d} |" for c, a, b, d in rows],
            "",
            f"Measured by `python bench/plan_latency.py --repeats {args.repeats}{clock_flag}` "
            f"on {platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}, one process ({os.cpu_count()} cores, "
            "shared with other runs: timings are noisy). Budget-limited plans solve one extra "
            "exact MILP per priority level that cannot be fully served, for the lean "
            "problem (observed demand, no bias) where it cannot be served in full either, "
            "and for the full problem above the lean floors (margins come last, "
            "docs/planner.md).",
        ]
        write_block(args.out, "\n".join(lines))
    return 0


BEGIN, END = "<!-- plan_latency: begin -->", "<!-- plan_latency: end -->"


def write_block(path: Path, block: str) -> None:
    """Put `block` between the BEGIN/END markers of `path`, keeping the rest of the page
    (the notes written by hand around the measured table); a new page is just the block.
    A page without the markers is refused, never overwritten."""
    framed = f"{BEGIN}\n{block}\n{END}"
    if not path.exists():
        path.write_text(framed + "\n")
        return
    text = path.read_text()
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block to replace; not overwriting it")
    path.write_text(text[:start] + framed + text[stop + len(END) :])


if __name__ == "__main__":
    raise SystemExit(main())
