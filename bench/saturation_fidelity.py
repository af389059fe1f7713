"""The latency model's highest stable load against the engine it models (a benchmark).

    .venv/bin/python bench/saturation_fidelity.py [--profile llama-3.1-8b-h100] [--requests 2000]

For a loose SLO (TTFT 10,000 s, TPOT 10 s) a replica's capacity is the model's stability
bound: the highest rate at which it predicts a finite queue. This script drives one
replica of the step engine (`tierscale_predictor.engine`, vLLM V1's scheduling, KV blocks
and preemption by recompute) with Poisson arrivals at 60-100 % of that bound, for
exponential prompt and output lengths (capped at 16,384 and 2,048 tokens) from short to
long contexts, and reports the highest fraction of the bound the engine sustains: its
p95 TTFT under 10 s and fewer than 0.05 preemptions per request. Past it the engine's
preemptions recompute prompts, the prefill work grows and the queue does not drain. It
also prints, at that rate, the engine's mean step time and decoding batch next to the
model's. The first 10 % of requests are not scored. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse

import numpy as np

from tierscale_predictor import capacity, engine, latency, loadgen, profiles

SHAPES = ((1000, 200), (2000, 400), (2000, 1600), (4700, 200), (4700, 800), (8000, 400))
"""(prompt mean, output mean) tokens, exponential: a chat mix, then ever longer contexts."""
FRACTIONS = (0.6, 0.7, 0.8, 0.9, 1.0)
LOOSE = latency.SloTarget(10_000.0, 10.0, 95.0)
PROMPT_MAX, OUTPUT_MAX = 16_384, 2_048
SUSTAINED_TTFT_P95_S = 10.0
SUSTAINED_PREEMPTIONS_PER_REQUEST = 0.05


def lengths(shape: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    prompts = np.clip(rng.exponential(shape[0], n).astype(int), 1, PROMPT_MAX)
    outputs = np.clip(rng.exponential(shape[1], n).astype(int), 1, OUTPUT_MAX)
    return prompts, outputs


def run(
    profile: profiles.StepProfile, rate_rps: float, prompts: np.ndarray, outputs: np.ndarray
) -> dict[str, float]:
    rng = np.random.default_rng(1)
    replica = engine.Replica(profile, record_steps=True)
    t = 0.0
    for i, (p, o) in enumerate(zip(prompts, outputs, strict=True)):
        t += rng.exponential(1.0 / rate_rps)
        replica.submit(engine.EngineRequest(i, t, int(p), int(o)))
    done = replica.drain()
    n = len(prompts)
    steps = replica.step_records or []
    steps = steps[len(steps) // 10 :]
    busy_s = sum(s.step_s for s in steps)
    ttfts = [r.ttft_s for r in sorted(done, key=lambda r: r.arrival_s)[n // 10 :]]
    return {
        "ttft_p95_s": float(np.percentile(ttfts, 95)),
        "preemptions_per_request": sum(r.preemptions for r in done) / n,
        "step_ms": 1000.0 * busy_s / max(len(steps), 1),
        "decode_batch": sum(s.decode_seqs * s.step_s for s in steps) / max(busy_s, 1e-12),
    }


def sustained(row: dict[str, float]) -> bool:
    return (
        row["ttft_p95_s"] < SUSTAINED_TTFT_P95_S
        and row["preemptions_per_request"] < SUSTAINED_PREEMPTIONS_PER_REQUEST
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="llama-3.1-8b-h100")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    profile = profiles.load_profile(args.profile)
    model = latency.LatencyModel.from_profile(profile)
    print(
        "| prompt / output mean | model bound | engine sustains | fails at "
        "| step ms engine / model | decode batch engine / model |"
    )
    print("|---|---:|---:|---:|---|---|")
    ratios = []
    for shape in SHAPES:
        prompts, outputs = lengths(shape, args.requests)
        seen = loadgen.observed_shape(prompts, outputs)
        bound_rps = capacity.max_rate_rps(model, LOOSE, seen)
        best: tuple[float, dict[str, float]] | None = None
        failed = None
        for frac in FRACTIONS:
            row = run(profile, frac * bound_rps, prompts, outputs)
            print(f"  {shape} at {frac:.0%}: {row}", flush=True)
            if not sustained(row):
                failed = frac
                break
            best = (frac, row)
        if best is None:
            print(f"| {shape[0]} / {shape[1]} | {bound_rps:.2f} req/s | < 60 % | 60 % | | |")
            continue
        frac, row = best
        rate = frac * bound_rps
        model_step_s = latency.mean_step_s(model, rate, seen)
        model_batch = rate * max(seen.output_tokens_mean - 1.0, 0.0) * model_step_s
        ratios.append(frac if failed is not None else 1.0)
        print(
            f"| {shape[0]} / {shape[1]} | {bound_rps:.2f} req/s | {frac:.0%} | "
            f"{'-' if failed is None else f'{failed:.0%}'} | "
            f"{row['step_ms']:.1f} / {1000.0 * model_step_s:.1f} | "
            f"{row['decode_batch']:.1f} / {model_batch:.1f} |",
            flush=True,
        )
    if ratios:
        print(
            f"\nThe engine sustains {min(ratios):.0%}-{max(ratios):.0%} of the model's bound "
            f"(the highest sustained fraction in steps of 10 %; profile {args.profile}, "
            f"{args.requests} requests per run)."
        )


if __name__ == "__main__":
    main()
