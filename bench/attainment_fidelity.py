"""Does a replica loaded to the model's capacity keep its promise? (a benchmark)

    .venv/bin/python bench/attainment_fidelity.py [--requests 3000] [--jobs 2]
        [--tpot-interference X] [--ttft-queue-steps X] [--ttft-residual-steps X]
        [--batch-spread X] [--ttft-residual-bounded X] [--ttft-bound] [--split LEAST MOST]
        [--probe PROMPT_MEAN OUTPUT_MEAN CV RATE]

The planner sizes pools with `capacity.max_rate_rps`: the highest Poisson rate at which
the latency model says one replica keeps TTFT and TPOT within the SLO at its percentile
P, i.e. at most (100 - P) % of requests miss each. This runs one replica of the step
engine (`tierscale_predictor.engine`, the simulator's reality) at exactly that rate, for
a grid of request mixes like the scenario generator's (lognormal prompts and outputs,
prompt means 250 / 1,000 / 4,000 tokens, output means 50 / 200 / 650, cv 0.8 and 1.6,
cut at 16,384 / 2,048 tokens) and SLOs at 1.5x and 3x the model's unloaded latency,
P = 95 and 99, and prints, per row, the engine's share of requests missing TTFT and
TPOT against the (100 - P) % the model allowed. A ratio above 1 is a capacity the
engine does not hold.

A request attains its SLO when both latencies hold, so the row's attainment target is
2P - 100 (%): with each latency within (100 - P) % it holds by a union bound. `--split
LEAST MOST` sizes the replica as the planner does (`latency.SloTarget.miss_frac`): the
2 (100 - P) % budget is split by where the model predicts the misses, TPOT's share kept
between LEAST and MOST of it (0.5 0.5: the equal split, the same capacities as without).
The last line counts the rows whose engine share meeting both falls below the target.

The tail constants (`latency.TailParams`) can be overridden to see what a refit would
do; the default is the shipped `latency.DEFAULT_TAIL`. Numbers are measured here, never
asserted in tests. Deterministic (fixed seeds); rows fan out over `--jobs` processes.
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from tierscale_predictor import capacity, engine, latency, loadgen, profiles

PROFILE = "llama-3.1-8b-h100"
PROMPT_MEANS = (250.0, 1000.0, 4000.0)
OUTPUT_MEANS = (50.0, 200.0, 650.0)
CVS = (0.8, 1.6)
SLO_FACTORS = (1.5, 3.0)
PERCENTILES = (95.0, 99.0)
PROMPT_MAX, OUTPUT_MAX = 16384, 2048


@dataclass(frozen=True, slots=True)
class Row:
    prompt_mean: float
    output_mean: float
    cv: float
    slo_factor: float
    percentile: float
    tpot_factor: float | None = None
    """TPOT's SLO in unloaded TPOTs when it differs from TTFT's (`--ttft-bound`)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    row: Row
    rate_rps: float
    ttft_slo_s: float
    tpot_slo_s: float
    ttft_miss: float
    tpot_miss: float
    both_met: float


def _lengths(mean: float, cv: float, cap: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """As the scenario generator draws them (`TokenSpec.draw`)."""
    s2 = math.log1p(cv * cv)
    x = rng.lognormal(math.log(mean) - s2 / 2.0, math.sqrt(s2), n)
    return np.minimum(np.maximum(np.rint(x), 1), cap).astype(np.int64)


def run_row(
    row: Row, tail: latency.TailParams, n: int, split: tuple[float, float] | None = None
) -> Outcome | None:
    profile = profiles.load_profile(PROFILE)
    model = latency.LatencyModel.from_profile(profile, tail=tail)
    rng = np.random.default_rng(0)
    prompts = _lengths(row.prompt_mean, row.cv, PROMPT_MAX, n, rng)
    outputs = _lengths(row.output_mean, row.cv, OUTPUT_MAX, n, rng)
    shape = loadgen.observed_shape(prompts, outputs)
    # The SLOs come from the shipped tail constants, so that overrides are judged against
    # the same SLOs.
    reference = latency.LatencyModel.from_profile(profile)
    idle = latency.predict(reference, 1e-6, shape, row.percentile)
    slo = latency.SloTarget(
        row.slo_factor * idle.ttft_s,
        (row.tpot_factor or row.slo_factor) * idle.tpot_s,
        row.percentile,
        miss_frac=None if split is None else 2.0 * (1.0 - row.percentile / 100.0),
        tpot_share_frac=split or (0.5, 0.5),
    )
    rate = capacity.max_rate_rps(model, slo, shape)
    if rate <= 0.0:
        return None
    arrivals = np.cumsum(np.random.default_rng(1).exponential(1.0 / rate, n))
    replica = engine.Replica(profile)
    for i in range(n):
        replica.submit(
            engine.EngineRequest(i, float(arrivals[i]), int(prompts[i]), int(outputs[i]))
        )
    done = [t for t in replica.drain() if t.request_id >= n // 10]
    ttft = np.array([t.ttft_s for t in done])
    tpot = np.array([t.tpot_s for t in done])
    return Outcome(
        row,
        rate,
        slo.ttft_s,
        slo.tpot_s,
        float(np.mean(ttft > slo.ttft_s)),
        float(np.mean(tpot > slo.tpot_s)),
        float(np.mean((ttft <= slo.ttft_s) & (tpot <= slo.tpot_s))),
    )


TTFT_BOUND_FACTORS = (1.2, 1.5)
"""`--ttft-bound`: TTFT's SLO at these multiples of the unloaded TTFT, TPOT's at 10x, so
TTFT is what binds (with the default grid TTFT's room is wide and TPOT binds)."""


def grid(ttft_bound: bool = False) -> list[Row]:
    factors = TTFT_BOUND_FACTORS if ttft_bound else SLO_FACTORS
    return [
        Row(p, o, cv, k, pct, 10.0 if ttft_bound else None)
        for p in PROMPT_MEANS
        for o in OUTPUT_MEANS
        for cv in CVS
        for k in factors
        for pct in PERCENTILES
    ]


def measure(
    tail: latency.TailParams,
    n: int,
    jobs: int,
    split: tuple[float, float] | None = None,
    ttft_bound: bool = False,
) -> list[Outcome]:
    rows = grid(ttft_bound)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        found = list(
            pool.map(run_row, rows, [tail] * len(rows), [n] * len(rows), [split] * len(rows))
        )
    return [o for o in found if o is not None]


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    """Miss ratios (engine misses / allowed misses) over the grid."""
    ttft = np.array([o.ttft_miss / (1.0 - o.row.percentile / 100.0) for o in outcomes])
    tpot = np.array([o.tpot_miss / (1.0 - o.row.percentile / 100.0) for o in outcomes])
    return {
        "rows": float(len(outcomes)),
        "ttft_median": float(np.median(ttft)),
        "ttft_p90": float(np.quantile(ttft, 0.9)),
        "ttft_over_1": float(np.mean(ttft > 1.0)),
        "tpot_median": float(np.median(tpot)),
        "tpot_p90": float(np.quantile(tpot, 0.9)),
        "tpot_over_1": float(np.mean(tpot > 1.0)),
        "below_target": float(
            sum(o.both_met < (2.0 * o.row.percentile - 100.0) / 100.0 for o in outcomes)
        ),
    }


def probe(
    prompt_mean: float,
    output_mean: float,
    cv: float,
    rate_rps: float,
    n: int,
    tail: latency.TailParams = latency.DEFAULT_TAIL,
) -> str:
    """One mix at one rate, engine against model: mean step, decoding batch, TPOT p50 and
    p99, and how slowly per-request TPOT moves (its correlation with the TPOT of the
    request 20 arrivals later). The numbers behind docs/predictor.md's single cases."""
    profile = profiles.load_profile(PROFILE)
    model = latency.LatencyModel.from_profile(profile, tail=tail)
    rng = np.random.default_rng(0)
    prompts = _lengths(prompt_mean, cv, PROMPT_MAX, n, rng)
    outputs = _lengths(output_mean, cv, OUTPUT_MAX, n, rng)
    shape = loadgen.observed_shape(prompts, outputs)
    arrivals = np.cumsum(np.random.default_rng(1).exponential(1.0 / rate_rps, n))
    replica = engine.Replica(profile, record_steps=True)
    for i in range(n):
        replica.submit(
            engine.EngineRequest(i, float(arrivals[i]), int(prompts[i]), int(outputs[i]))
        )
    done = sorted(
        (t for t in replica.drain() if t.request_id >= n // 10), key=lambda t: t.arrival_s
    )
    tpot = np.array([t.tpot_s for t in done])
    records = replica.step_records or []
    steps = records[len(records) // 5 :]
    step_s = np.array([r.step_s for r in steps])
    batch = np.array([r.decode_seqs for r in steps])
    p50 = latency.predict(model, rate_rps, shape, 50.0)
    p99 = latency.predict(model, rate_rps, shape, 99.0)
    return (
        f"{prompt_mean:g} / {output_mean:g} tokens, cv {cv:g}, {rate_rps:g} req/s "
        f"(model busy {p99.busy_frac:.2f}): engine mean step {1e3 * step_s.mean():.1f} ms, "
        f"batch {batch.mean():.0f} (sd {batch.std():.0f}), TPOT p50 "
        f"{1e3 * np.median(tpot):.1f} / p99 {1e3 * np.quantile(tpot, 0.99):.1f} ms, "
        f"TPOT autocorrelation at 20 arrivals {np.corrcoef(tpot[:-20], tpot[20:])[0, 1]:.2f}; "
        f"model mean step {1e3 * latency.mean_step_s(model, rate_rps, shape):.1f} ms, "
        f"TPOT p50 {1e3 * p50.tpot_s:.1f} / p99 {1e3 * p99.tpot_s:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument(
        "--probe",
        nargs=4,
        type=float,
        metavar=("PROMPT_MEAN", "OUTPUT_MEAN", "CV", "RATE"),
        help="one mix at one rate, engine against model (no grid)",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tpot-interference", type=float)
    parser.add_argument("--ttft-queue-steps", type=float)
    parser.add_argument("--ttft-residual-steps", type=float)
    parser.add_argument("--batch-spread", type=float, help="0 leaves the batch's swings out")
    parser.add_argument(
        "--ttft-residual-bounded", type=float, help="1 keeps the step residual at its p99 size"
    )
    parser.add_argument(
        "--ttft-bound",
        action="store_true",
        help="TTFT SLOs at 1.2x / 1.5x the unloaded TTFT and TPOT at 10x: TTFT binds",
    )
    parser.add_argument(
        "--split",
        nargs=2,
        type=float,
        metavar=("LEAST", "MOST"),
        help="split the 2 (100 - P) %% miss budget by need, TPOT's share within [LEAST, MOST]",
    )
    args = parser.parse_args()
    tail = latency.DEFAULT_TAIL
    overridable = (
        "tpot_interference",
        "ttft_queue_steps",
        "ttft_residual_steps",
        "batch_spread",
        "ttft_residual_bounded",
    )
    for name in overridable:
        value = getattr(args, name)
        if value is not None:
            tail = replace(tail, **{name: value})
    if args.probe:
        print(probe(*args.probe, n=args.requests, tail=tail))
        return 0
    split = None if args.split is None else (args.split[0], args.split[1])
    outcomes = measure(tail, args.requests, args.jobs, split, args.ttft_bound)
    print(f"tail constants: {tail}")
    print(
        "| prompt / output mean, cv | SLO (x unloaded) | P | req/s per replica "
        "| TTFT miss / allowed | TPOT miss / allowed | both met |"
    )
    print("|---|---|---|---|---|---|---|")
    for o in outcomes:
        r = o.row
        allowed = 100.0 - r.percentile
        print(
            f"| {r.prompt_mean:g} / {r.output_mean:g}, {r.cv:g} | {r.slo_factor:g}x "
            f"({1e3 * o.ttft_slo_s:.0f} / {1e3 * o.tpot_slo_s:.1f} ms) | p{r.percentile:g} "
            f"| {o.rate_rps:.2f} | {100 * o.ttft_miss:.1f} / {allowed:g} % "
            f"| {100 * o.tpot_miss:.1f} / {allowed:g} % | {100 * o.both_met:.1f} % |"
        )
    s = summary(outcomes)
    print()
    print(
        f"{s['rows']:.0f} rows. Engine misses / allowed: TTFT median {s['ttft_median']:.2f}, "
        f"p90 {s['ttft_p90']:.2f}, above 1 in {100 * s['ttft_over_1']:.0f} % of rows; "
        f"TPOT median {s['tpot_median']:.2f}, p90 {s['tpot_p90']:.2f}, above 1 in "
        f"{100 * s['tpot_over_1']:.0f} % of rows. Share meeting both below the target "
        f"(2P - 100) in {s['below_target']:.0f} of {s['rows']:.0f} rows"
        + (
            "."
            if split is None
            else f" (misses split by need, TPOT's share {split[0]:g}-{split[1]:g})."
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
