"""The latency model's TTFT percentiles against the engine it models (a benchmark).

    .venv/bin/python bench/ttft_fidelity.py [--profile llama-3.1-8b-h100] [--requests 5000]

One replica of the step engine (`tierscale_predictor.engine`, vLLM V1's scheduling) under
Poisson arrivals at 20 / 50 / 80 % busy, prompts and outputs lognormal (prompt mean and
cv per row, outputs cv 1.0); the first 10 % of requests are not scored. For each row,
the engine's p90 / p95 / p99 TTFT and what `latency.predict` says at the same rate and
percentile, given the shape's mean and p99 lengths as the planner sees them. Prints a
markdown table and the range of model/engine ratios per percentile.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tierscale_predictor import engine, latency, profiles

SHAPES = ((1155, 1.0, 211), (1000, 0.5, 200), (3000, 1.5, 300), (500, 2.0, 100))
"""(prompt mean, prompt cv, output mean): S2's lengths, a narrow, a long heavy-tailed and
a short very heavy-tailed prompt mix."""
BUSY = (0.2, 0.5, 0.8)
PERCENTILES = (90.0, 95.0, 99.0)
_Z99 = 2.3263478740408408


def _sigma(cv: float) -> float:
    return math.sqrt(math.log(1.0 + cv * cv))


def _p99(mean: float, cv: float) -> float:
    s = _sigma(cv)
    return math.exp(math.log(mean) - s * s / 2.0 + _Z99 * s)


def engine_ttfts(
    profile: profiles.StepProfile, rate_rps: float, shape: tuple[float, float, float], n: int
) -> np.ndarray:
    prompt_mean, prompt_cv, output_mean = shape
    rng = np.random.default_rng(0)
    replica = engine.Replica(profile)
    sp, so = _sigma(prompt_cv), _sigma(1.0)
    t = 0.0
    for i in range(n):
        t += rng.exponential(1.0 / rate_rps)
        p = rng.lognormal(math.log(prompt_mean) - sp * sp / 2.0, sp)
        o = rng.lognormal(math.log(output_mean) - so * so / 2.0, so)
        replica.submit(engine.EngineRequest(i, t, max(int(p), 1), max(int(o), 1)))
    done = sorted(replica.drain(), key=lambda r: r.arrival_s)[n // 10 :]
    return np.array([r.ttft_s for r in done])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="llama-3.1-8b-h100")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    profile = profiles.load_profile(args.profile)
    model = latency.LatencyModel.from_profile(profile)
    ratios: dict[float, list[float]] = {p: [] for p in PERCENTILES}
    head = " | ".join(f"p{p:g} engine / model ms" for p in PERCENTILES)
    print(f"| prompt mean / cv | busy | req/s | {head} |")
    print("|---|---|---|" + "---|" * len(PERCENTILES))
    for shape in SHAPES:
        prompt_mean, prompt_cv, output_mean = shape
        seen = latency.WorkloadShape(
            prompt_mean,
            output_mean,
            prompt_tokens_p99=_p99(prompt_mean, prompt_cv),
            output_tokens_p99=_p99(output_mean, 1.0),
        )
        for busy in BUSY:
            rate = busy / latency.work_s_of_shape(model, seen)
            ttfts = engine_ttfts(profile, rate, shape, args.requests)
            cells = []
            for pct in PERCENTILES:
                measured = float(np.quantile(ttfts, pct / 100.0))
                predicted = latency.predict(model, rate, seen, pct).ttft_s
                ratios[pct].append(predicted / measured)
                cells.append(f"{1e3 * measured:.0f} / {1e3 * predicted:.0f}")
            row = f"| {prompt_mean:g} / {prompt_cv:g} | {busy:.0%} | {rate:.2f} | "
            print(row + " | ".join(cells) + " |", flush=True)
    print()
    for pct, r in ratios.items():
        print(
            f"p{pct:g} TTFT model/engine: {min(r):.2f}x .. {max(r):.2f}x"
            f" (median {np.median(r):.2f}x)"
        )


if __name__ == "__main__":
    main()
