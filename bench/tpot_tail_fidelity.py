"""The predictor's TPOT tail against the step engine's, by output length (a benchmark).

    .venv/bin/python -m bench.tpot_tail_fidelity [--seeds 7,2027] [--count 30]
        [--every 2] [--busy 0.2,0.4,0.6,0.8] [--requests 8000] [--jobs 2] [--out rows.json]

The planner sizes a pool by the percentile TPOT `latency.predict` gives for its tier's
lengths (mean and p99 of prompts and outputs, a lognormal each, the output split into
equal-probability classes). Here, for every `--every`-th tier of the generated scenarios
whose engine is exactly the planner's model, one replica of the step engine serves a Poisson
sample of the tier's own requests at each busy fraction of the model (`--busy`), and the
two are compared:

- the TPOT at p97.5 and p99.5 (the planning percentiles of 95 % and 99 % targets):
  log(model / engine), per point;
- by output length (the edges of vLLM's 1-2-5 buckets of generated tokens from 2 to 500,
  2-token answers, whose one decode step is their TPOT, apart from 3-4): the share
  of the class's requests whose TPOT exceeds the engine's p97.5 over all, against the
  predictor's share for requests of the class's median length at the same load
  (`latency._tpot_exceed_prob` with that one class), as log((model + 0.002) / (engine +
  0.002)).

Deterministic (seeded draws); tiers fan out over `--jobs` processes. Numbers are measured
here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tierscale_sim import generate, runner

from bench import capacity_fidelity
from tierscale_predictor import engine, latency

PERCENTILES = (97.5, 99.5)
CLASS_EDGES = (2, 3, 5, 10, 20, 50, 100, 200, 500)
"""Lower edges of the output-length classes (tokens): vLLM's 1-2-5 bucket edges from 2 to
500 (`vllm.one_two_five_buckets`), with 3 added so that 2-token answers stand apart."""
MIN_CLASS_REQUESTS = 100
"""Classes with fewer requests in a run are left out: their exceedance is noise."""
EPS = 0.002
"""Added to both shares before their log ratio: below it a share is noise at these sizes."""


@dataclass(frozen=True, slots=True)
class ClassPoint:
    lo_tokens: int
    requests: int
    engine_exceed: float
    """Share of the class's requests whose TPOT exceeds the engine's p97.5 over all."""
    model_exceed: float


@dataclass(frozen=True, slots=True)
class Point:
    tier: str
    output_mean: float
    busy_frac: float
    engine_tpot_s: dict[float, float]
    """Percentile -> the engine's TPOT there."""
    model_tpot_s: dict[float, float]
    classes: tuple[ClassPoint, ...]

    def log_ratio(self, percentile: float) -> float:
        return math.log(self.model_tpot_s[percentile] / self.engine_tpot_s[percentile])


def class_of(output_tokens: int) -> int | None:
    """The lower edge of the class an answer of this many tokens falls in (None: < 2)."""
    if output_tokens < CLASS_EDGES[0]:
        return None
    return max(edge for edge in CLASS_EDGES if edge <= output_tokens)


def class_label(lo_tokens: int) -> str:
    """'2', '5-9', '500+': the class's answer lengths."""
    i = CLASS_EDGES.index(lo_tokens)
    if i == len(CLASS_EDGES) - 1:
        return f"{lo_tokens}+"
    hi = CLASS_EDGES[i + 1] - 1
    return str(lo_tokens) if hi == lo_tokens else f"{lo_tokens}-{hi}"


def model_exceed(
    model: latency.LatencyModel,
    load: latency._Load,
    shape: latency.WorkloadShape,
    decodes: float,
    tpot_s: float,
) -> float:
    """The predictor's share of requests with `decodes` decode steps whose TPOT exceeds
    `tpot_s` at this load (its output classes replaced by that one)."""
    stats = replace(latency._shape_stats(shape), decodes_by_class=(decodes,), class_weights=(1.0,))
    excess_s = tpot_s - model.output_s_per_token
    return latency._tpot_exceed_prob(load, stats, excess_s, model.tail.tpot_interference)


def tiers(seeds: Sequence[int], count: int, every: int) -> list[tuple[int, int, str]]:
    """(seed, scenario index, tier) of every `every`-th tier whose engine is the model, with
    enough requests (`capacity_fidelity.MIN_REQUESTS`). Not by the tail's regime: that
    would let the predictor under test pick the tiers it is measured on."""
    picked: list[tuple[int, int, str]] = []
    for seed in seeds:
        for index in range(count):
            spec = generate.generate_one(seed, index).spec
            if any(not m.reality.is_exact for m in spec.models.values()):
                continue
            setup = runner.prepare(spec, Path(f"{spec.name}.yaml"))
            workload = runner.build_workload(setup, 0, 1.0)
            for i, tier in enumerate(setup.tiers):
                if int((workload.tier_index == i).sum()) >= capacity_fidelity.MIN_REQUESTS:
                    picked.append((seed, index, tier.name))
    return picked[::every]


def measure_tier(
    seed: int, index: int, tier_name: str, busy_fracs: Sequence[float], requests: int
) -> list[Point]:
    spec = generate.generate_one(seed, index).spec
    setup = runner.prepare(spec, Path(f"{spec.name}.yaml"))
    workload = runner.build_workload(setup, 0, 1.0)
    i = [t.name for t in setup.tiers].index(tier_name)
    tier = setup.tiers[i]
    model, shape = capacity_fidelity._model_and_shape(setup, workload, i)
    mine = workload.tier_index == i
    prompts, outputs = workload.prompt_tokens[mine], workload.output_tokens[mine]
    work_s = latency.work_s_of_shape(model, shape)
    points = []
    for busy in busy_fracs:
        rate_rps = busy / work_s
        load = latency._load(model, rate_rps, busy, shape)
        if not load.stable:
            continue
        rng = np.random.default_rng([seed, index, i])
        pick = rng.integers(0, len(prompts), requests)
        arrivals = np.cumsum(rng.exponential(1.0, requests)) / rate_rps
        timings = engine.simulate(
            setup.profiles_by_model[tier.model],
            [
                engine.EngineRequest(n, float(at), int(prompts[k]), int(outputs[k]))
                for n, (at, k) in enumerate(zip(arrivals, pick, strict=True))
            ],
            max_num_seqs=tier.pool.max_num_seqs,
            max_num_batched_tokens=tier.pool.max_num_batched_tokens,
        )
        # The first tenth is left out: a replica that starts empty flatters it.
        kept = [t for t in timings if t.request_id >= requests // 10 and t.output_tokens > 1]
        tpots = np.array([t.tpot_s for t in kept])
        engine_q = {p: float(np.percentile(tpots, p)) for p in PERCENTILES}
        model_q = {p: latency.predict(model, rate_rps, shape, p).tpot_s for p in PERCENTILES}
        bar = engine_q[PERCENTILES[0]]
        classes = []
        for lo in CLASS_EDGES:
            members = [t for t in kept if class_of(t.output_tokens) == lo]
            if len(members) < MIN_CLASS_REQUESTS:
                continue
            decodes = float(np.median([t.output_tokens for t in members])) - 1.0
            classes.append(
                ClassPoint(
                    lo,
                    len(members),
                    float(np.mean([t.tpot_s > bar for t in members])),
                    model_exceed(model, load, shape, decodes, bar),
                )
            )
        points.append(
            Point(
                f"{spec.name}/{tier_name}",
                shape.output_tokens_mean,
                busy,
                engine_q,
                model_q,
                tuple(classes),
            )
        )
    return points


def _job(args: tuple[int, int, str, tuple[float, ...], int]) -> list[Point]:
    return measure_tier(*args)


def _quantiles(values: Sequence[float]) -> str:
    ordered = np.asarray(sorted(values))
    return " / ".join(f"{float(np.quantile(ordered, q)):+.2f}" for q in (0.1, 0.5, 0.9))


def summary(points: Sequence[Point]) -> list[str]:
    """Two Markdown tables: the TPOT percentiles, and the exceedance by output length."""
    lines = [
        "| busy | points | log(model / engine) TPOT p97.5: p10 / median / p90 | p99.5 |",
        "|---|---|---|---|",
    ]
    for busy in sorted({p.busy_frac for p in points}) + [None]:
        group = [p for p in points if busy is None or p.busy_frac == busy]
        cells = [_quantiles([p.log_ratio(q) for p in group]) for q in PERCENTILES]
        lines.append(
            f"| {'all' if busy is None else f'{busy:.1f}'} | {len(group)} | {' | '.join(cells)} |"
        )
    lines += [
        "",
        "| output tokens | points | share above the engine's p97.5: engine median | model median"
        " | log ratio (+0.002 each) p10 / median / p90 |",
        "|---|---|---|---|---|",
    ]
    for lo in CLASS_EDGES:
        group = [c for p in points for c in p.classes if c.lo_tokens == lo]
        if not group:
            continue
        ratios = [math.log((c.model_exceed + EPS) / (c.engine_exceed + EPS)) for c in group]
        engine_share = statistics.median(c.engine_exceed for c in group)
        model_share = statistics.median(c.model_exceed for c in group)
        lines.append(
            f"| {class_label(lo)} | {len(group)} | {engine_share:.4f} | {model_share:.4f}"
            f" | {_quantiles(ratios)} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,2027")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--busy", default="0.2,0.4,0.6,0.8")
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write every point here (JSON)")
    args = parser.parse_args(argv)
    busy = tuple(float(b) for b in args.busy.split(","))
    work = [
        (*t, busy, args.requests)
        for t in tiers([int(s) for s in args.seeds.split(",")], args.count, args.every)
    ]
    print(f"{len(work)} tiers x {len(busy)} loads, {args.requests} requests each", flush=True)
    with ProcessPoolExecutor(max(args.jobs, 1)) as pool:
        points = [p for ps in pool.map(_job, work) for p in ps]
    print("\n".join(summary(points)))
    if args.out:
        args.out.write_text(json.dumps([asdict(p) for p in points], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
