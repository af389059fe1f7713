"""The planner's capacity per replica against the engine's, on generated tiers (a benchmark).

    .venv/bin/python bench/capacity_fidelity.py [--seeds 7,2027,20261130] [--count 30]
        [--jobs 2] [--out rows.json]

For every tier of the generalisation benchmark's scenarios (`tierscale bench --generate
COUNT --seed S` draws the same ones), two numbers of one replica of the tier's own pool:

- the planner's: `capacities.own_pool_capacity_rps`, what it plans the pool with, at the
  lengths it would learn in steady state (the mean and p99 of the tier's requests in the
  reference sample, rounded as `lengths.shape` rounds them), with no bias learned;
- the engine's: the rate at which one replica of the scenario's true engine keeps the
  tier's attainment target (`runner.capacity_of`, the probe that sizes `oracle` and
  `static`, on the same reference sample).

Rows are grouped by where the tier's tail lies for the model (`capacities.tail_cliff_frac`):
"tail met" (an idle replica meets the planning percentile with room), "lean" (only below
a 10 % busy fraction: capacity leans to the mean lengths), "tail unmet" (not even idle:
the fallback sizes it), and by whether the scenario's engine differs from the planner's
model (`models.<name>.reality`). Per group: the ratio planner / engine (p10, median,
p90), how many are optimistic or pessimistic by more than 10 %, and how many tiers no
replica of the engine serves at their target at all (engine capacity 0). A ratio above
1 is a capacity the engine does not hold: the planner buys too few replicas.

`--output-classes sample` (or `buckets`) plans each tier with the output-length classes
the predictor builds (`latency._O_CLASSES` equal-probability classes, decode steps per
class) taken from the tier's own requests instead of from the lognormal through their
mean and p99: `sample` at the sample's exact quantiles, `buckets` as Prometheus would
interpolate them from vLLM's 1-2-5 `vllm:request_generation_tokens` buckets (what a
cluster could give the planner). Everything else stays the planner's. It asks whether
the assumed length distribution is where the planner's capacity error comes from.

Deterministic (seeded draws and probes); scenarios fan out over `--jobs` processes. Numbers
are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tierscale_sim import generate, runner
from tierscale_sim.workloads import Workload

from tierscale.domain import vllm
from tierscale.domain.metrics import Histogram
from tierscale.domain.tiers import Tier
from tierscale.policy import capacities
from tierscale.policy.config import PlannerConfig
from tierscale.policy.lengths import shape as planned_shape
from tierscale_predictor import capacity, latency

MIN_REQUESTS = 200
"""Tiers with fewer requests in the reference sample are left out: their p99 is noise."""
OFF_BY = 1.1
"""A ratio beyond this (either way) counts as optimistic or pessimistic."""
REGIMES = ("tail met", "lean", "tail unmet")


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    tier: str
    mismatch: bool
    regime: str
    attainment: float
    ttft_s: float
    tpot_s: float
    prompt_mean: float
    prompt_p99: float
    output_mean: float
    planner_rps: float
    engine_rps: float

    @property
    def ratio(self) -> float | None:
        """Planner / engine; None where either is 0."""
        if self.planner_rps <= 0.0 or self.engine_rps <= 0.0:
            return None
        return self.planner_rps / self.engine_rps


def regime(cliff_frac: float) -> str:
    if cliff_frac <= 0.0:
        return "tail met"
    return "tail unmet" if cliff_frac >= 1.0 else "lean"


def tail_regime(setup: runner.Setup, workload: Workload, index: int) -> str:
    """Where tier `index`'s tail lies for the planner's model at the lengths of its
    requests in `workload` (`regime`)."""
    if not (workload.tier_index == index).any():
        return "tail met"
    model, shape = _model_and_shape(setup, workload, index)
    return regime(capacities.tail_cliff_frac(model, setup.tiers[index], shape, PlannerConfig()))


def _model_and_shape(
    setup: runner.Setup, workload: Workload, index: int
) -> tuple[latency.LatencyModel, latency.WorkloadShape]:
    """The planner's model of the tier's pool and the lengths it would learn from the
    tier's requests in `workload` (mean and p99, rounded as `lengths.shape` rounds)."""
    tier = setup.tiers[index]
    mine = workload.tier_index == index
    prompts = workload.prompt_tokens[mine].astype(float)
    outputs = workload.output_tokens[mine].astype(float)
    lengths = (
        float(prompts.mean()),
        float(outputs.mean()),
        float(np.quantile(prompts, 0.99)),
        float(np.quantile(outputs, 0.99)),
    )
    base = latency.LatencyModel.from_profile(setup.profiles_by_model[tier.model])
    model = replace(
        base,
        max_num_seqs=tier.pool.max_num_seqs or base.max_num_seqs,
        max_num_batched_tokens=tier.pool.max_num_batched_tokens or base.max_num_batched_tokens,
    )
    return model, planned_shape(lengths)


OUTPUT_CLASSES = ("lognormal", "sample", "buckets")
"""Where the output-length classes come from (`--output-classes`); lognormal: the planner's."""


def bucket_quantile(outputs: np.ndarray) -> Callable[[float], float]:
    """The q-quantile of `outputs` as Prometheus' `histogram_quantile` reads it from the
    1-2-5 buckets vLLM exports them in (`Histogram.quantile`, up to Llama-3.1's context)."""
    histogram = Histogram.of(
        outputs.tolist(), vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN)
    )

    def quantile(q: float) -> float:
        value = histogram.quantile(q)
        return 0.0 if value is None else value

    return quantile


def output_classes(
    quantile: Callable[[float], float], n: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(decode steps, share) of `n` equal-probability output-length classes at these
    quantiles, built as `latency._shape_stats` builds them (requests with no decode step
    left out, the shares renormalised); None if no class decodes."""
    decodes = [max(round(quantile((i + 0.5) / n)), 1) - 1.0 for i in range(n)]
    kept = [d for d in decodes if d >= 1.0]
    if not kept:
        return None
    return tuple(kept), tuple(1.0 / len(kept) for _ in kept)


@contextmanager
def classes_for(
    shape: latency.WorkloadShape, classes: tuple[tuple[float, ...], tuple[float, ...]] | None
) -> Iterator[None]:
    """While inside, the predictor's length statistics of `shape` use `classes` for its
    output lengths (the rest of its statistics unchanged); capacity caches cleared on the
    way in and out so no answer leaks across."""
    original = latency._shape_stats
    if classes is None:
        yield
        return

    def patched(asked: latency.WorkloadShape) -> latency._ShapeStats:
        stats = original(asked)
        if asked != shape:
            return stats
        return replace(stats, decodes_by_class=classes[0], class_weights=classes[1])

    capacity.max_busy_frac.cache_clear()
    latency._shape_stats = patched  # type: ignore[assignment]
    try:
        yield
    finally:
        latency._shape_stats = original
        capacity.max_busy_frac.cache_clear()


def _planner_rps(
    model: latency.LatencyModel,
    tier: Tier,
    shape: latency.WorkloadShape,
    outputs: np.ndarray,
    how: str,
) -> float:
    cfg = PlannerConfig()
    if how == "lognormal":
        return capacities.own_pool_capacity_rps(model, tier, shape, cfg)
    quantile = (
        bucket_quantile(outputs) if how == "buckets" else (lambda q: float(np.quantile(outputs, q)))
    )
    with classes_for(shape, output_classes(quantile, latency._O_CLASSES)):
        return capacities.own_pool_capacity_rps(model, tier, shape, cfg)


def scenario_rows(seed: int, index: int, how: str = "lognormal") -> list[Row]:
    """Every tier of generated scenario `index` of `seed` with enough requests (`how`:
    where the planner's output-length classes come from, `OUTPUT_CLASSES`)."""
    spec = generate.generate_one(seed, index).spec
    setup = runner.prepare(spec, Path(f"{spec.name}.yaml"))
    workload = runner.build_workload(setup, 0, 1.0)
    cfg = PlannerConfig()
    mismatch = any(not m.reality.is_exact for m in spec.models.values())
    rows = []
    for i, tier in enumerate(setup.tiers):
        mine = workload.tier_index == i
        if int(mine.sum()) < MIN_REQUESTS:
            continue
        model, shape = _model_and_shape(setup, workload, i)
        rows.append(
            Row(
                scenario=spec.name,
                tier=tier.name,
                mismatch=mismatch,
                regime=regime(capacities.tail_cliff_frac(model, tier, shape, cfg)),
                attainment=tier.slo.attainment_frac,
                ttft_s=tier.slo.ttft_s,
                tpot_s=tier.slo.tpot_s,
                prompt_mean=shape.prompt_tokens_mean,
                prompt_p99=shape.prompt_tokens_p99 or shape.prompt_tokens_mean,
                output_mean=shape.output_tokens_mean,
                planner_rps=_planner_rps(
                    model, tier, shape, workload.output_tokens[mine].astype(float), how
                ),
                engine_rps=runner.capacity_of(setup, i),
            )
        )
    return rows


def _rows_of(job: tuple[int, int, str]) -> list[Row]:
    return scenario_rows(*job)


def measure(seeds: Sequence[int], count: int, jobs: int, how: str = "lognormal") -> list[Row]:
    work = [(seed, i, how) for seed in seeds for i in range(count)]
    if jobs <= 1:
        return [row for job in work for row in _rows_of(job)]
    with ProcessPoolExecutor(jobs) as pool:
        return [row for rows in pool.map(_rows_of, work) for row in rows]


def _quantile(values: Sequence[float], q: float) -> float:
    return float(np.quantile(np.asarray(values), q))


def summary(rows: Sequence[Row]) -> list[str]:
    """Markdown table, one line per (engine, regime) group with any rows."""
    lines = [
        "| engine | tail | tiers | engine serves none | planner / engine: p10 | median | p90"
        " | optimistic > 10 % | pessimistic > 10 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mismatch in (False, True):
        for name in REGIMES:
            group = [r for r in rows if r.mismatch == mismatch and r.regime == name]
            if not group:
                continue
            ratios = [x for r in group if (x := r.ratio) is not None]
            none = sum(r.engine_rps <= 0.0 for r in group)
            cells = ["-", "-", "-"]
            if ratios:
                cells = [f"{_quantile(ratios, q):.2f}" for q in (0.1, 0.5, 0.9)]
            lines.append(
                f"| {'differs (mismatch)' if mismatch else 'as modelled'} | {name} | {len(group)}"
                f" | {none} | {' | '.join(cells)}"
                f" | {sum(x > OFF_BY for x in ratios)} | {sum(x < 1.0 / OFF_BY for x in ratios)} |"
            )
    return lines


def worst(rows: Sequence[Row], n: int = 10) -> list[str]:
    """The tiers the planner is most optimistic about (log ratio), then where the engine
    serves none but the planner plans a capacity (the fallback)."""
    scored = sorted(
        (r for r in rows if r.ratio is not None), key=lambda r: -math.log(r.ratio or 1.0)
    )
    lines = [
        "| scenario | tier | tail | SLO (TTFT / TPOT, target) | prompt mean / p99 | planner"
        " req/s | engine req/s | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in scored[:n]:
        lines.append(
            f"| {r.scenario} | {r.tier} | {r.regime} | {r.ttft_s:g} s / {r.tpot_s * 1000:g} ms,"
            f" {r.attainment:.0%} | {r.prompt_mean:,.0f} / {r.prompt_p99:,.0f}"
            f" | {r.planner_rps:.2f} | {r.engine_rps:.2f} | {r.ratio:.2f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,2027,20261130")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write every row here (JSON)")
    parser.add_argument(
        "--output-classes",
        choices=OUTPUT_CLASSES,
        default="lognormal",
        help="where the planner's output-length classes come from (default: the planner's"
        " lognormal through the mean and p99)",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = measure(seeds, args.count, args.jobs, args.output_classes)
    if args.out:
        args.out.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    print(
        f"{len(rows)} tiers of {len(seeds) * args.count} generated scenarios"
        f" (seeds {args.seeds}, {args.count} each; output-length classes:"
        f" {args.output_classes})\n"
    )
    ratios = [x for r in rows if (x := r.ratio) is not None]
    if ratios:
        spread = statistics.fmean(abs(math.log(x)) for x in ratios)
        print(f"mean |log(planner / engine)| over {len(ratios)} tiers: {spread:.3f}\n")
    print("\n".join(summary(rows)))
    print("\nMost optimistic:\n")
    print("\n".join(worst(rows)))
    unmet = [r for r in rows if r.engine_rps <= 0.0]
    if unmet:
        planned = statistics.median(r.planner_rps for r in unmet)
        print(
            f"\n{len(unmet)} tiers no replica of the engine serves at their target;"
            f" the planner plans them at a median {planned:.2f} req/s per replica."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
