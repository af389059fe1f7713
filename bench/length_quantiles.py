"""How well a request-length p99 read from vLLM's buckets matches the requests' own (a benchmark).

    .venv/bin/python -m bench.length_quantiles [--seeds 7,2027,20261130] [--count 30]

vLLM exports request lengths only as histograms (`vllm:request_prompt_tokens`,
`vllm:request_generation_tokens`) with 1-2-5 bucket bounds, each 2-2.5x the one below; the
planner plans every tier at the p99 it reads from them (`tierscale.loop.observe`). For every
tier of the generalisation benchmark's scenarios (`tierscale bench --generate COUNT --seed
S` draws the same ones) with at least 200 requests, this reads the p99 prompt and output
length of the tier's requests from the histogram vLLM would export (up to Llama-3.1's
context, as the simulator's pools) in two ways, Prometheus' `histogram_quantile` (linear
inside the bucket, `Histogram.quantile`, what the planner reads) and a power-law reading
of the bucket that holds the rank (`power_law_quantile`), and prints each one's ratio to
the requests' exact p99 (p10, median, p90). Deterministic; numbers are measured here,
never asserted in tests.

Why it is here and not in the planner: the power-law reading is far closer to the exact
p99, but planning with it changed no outcome for the better (docs/bench/NOTES.md, "Tried
and not landed: the length p99 read as a power-law tail inside its bucket").
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tierscale_sim import generate, runner

from bench.capacity_fidelity import MIN_REQUESTS
from tierscale.domain import vllm
from tierscale.domain.metrics import Histogram

QUANTILE = 0.99


@dataclass(frozen=True, slots=True)
class Reading:
    scenario: str
    tier: str
    which: str
    """"prompt" or "output"."""
    exact: float
    linear: float
    tail: float


def power_law_quantile(histogram: Histogram, q: float) -> float | None:
    """`histogram.quantile(q)`, with the bucket that holds rank q read as a power-law tail
    where the buckets allow it: its survival between the bucket's bounds taken as
    `S(lo) (x / lo)^-a`, `a` from the counts above `lo` and above `hi` (exact for a Pareto
    tail; a 1-2-5 bucket is 2-2.5x wide, and a density that falls across it puts the
    linear reading too high). Where the bucket has no lower bound above 0 or nothing
    lies beyond it (the first bucket, the last one with observations, the +Inf bucket),
    the linear reading."""
    linear = histogram.quantile(q)
    if linear is None:
        return None
    count = histogram.count
    rank = q * count
    previous_bound, previous_count = 0.0, 0.0
    for bound, cumulative in zip(histogram.upper_bounds, histogram.cumulative_counts, strict=True):
        if cumulative >= rank:
            above_lower = count - previous_count
            beyond = count - cumulative
            wanted = count - rank
            if previous_bound <= 0.0 or beyond <= 0.0 or not beyond <= wanted < above_lower:
                return linear
            power = math.log(above_lower / beyond) / math.log(bound / previous_bound)
            return previous_bound * float((above_lower / wanted) ** (1.0 / power))
        previous_bound, previous_count = bound, cumulative
    return linear


def readings(lengths: np.ndarray, scenario: str, tier: str, which: str) -> Reading:
    """The p99 of `lengths`: exact, and both readings of the histogram vLLM exports."""
    histogram = Histogram.of(
        lengths.tolist(), vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN)
    )
    linear = histogram.quantile(QUANTILE)
    tail = power_law_quantile(histogram, QUANTILE)
    assert linear is not None and tail is not None  # at least MIN_REQUESTS observations
    return Reading(scenario, tier, which, float(np.quantile(lengths, QUANTILE)), linear, tail)


def scenario_readings(seed: int, index: int) -> list[Reading]:
    spec = generate.generate_one(seed, index).spec
    setup = runner.prepare(spec, Path(f"{spec.name}.yaml"))
    workload = runner.build_workload(setup, 0, 1.0)
    out: list[Reading] = []
    for i, tier in enumerate(setup.tiers):
        mine = workload.tier_index == i
        if int(mine.sum()) < MIN_REQUESTS:
            continue
        for which, lengths in (
            ("prompt", workload.prompt_tokens[mine]),
            ("output", workload.output_tokens[mine]),
        ):
            out.append(readings(lengths.astype(float), spec.name, tier.name, which))
    return out


def summary(rows: Sequence[Reading]) -> list[str]:
    """Markdown table: per length and reading, the ratio to the exact p99."""
    lines = [
        "| length | reading | tiers | reading / exact p99: p10 | median | p90 |",
        "|---|---|---|---|---|---|",
    ]
    for which in ("prompt", "output"):
        group = [r for r in rows if r.which == which and r.exact > 0.0]
        for name in ("linear", "tail"):
            ratios = np.asarray([getattr(r, name) / r.exact for r in group])
            if ratios.size == 0:
                continue
            p10, p50, p90 = (float(np.quantile(ratios, q)) for q in (0.1, 0.5, 0.9))
            label = "linear (histogram_quantile)" if name == "linear" else "power-law tail"
            lines.append(
                f"| {which} | {label} | {ratios.size} | {p10:.2f} | {p50:.2f} | {p90:.2f} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,2027,20261130")
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [r for s in seeds for i in range(args.count) for r in scenario_readings(s, i)]
    print(
        f"p99 request lengths of {len(rows) // 2} tiers (seeds {args.seeds}, {args.count} each)\n"
    )
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
