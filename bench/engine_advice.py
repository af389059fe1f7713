"""Engine-argument advice against the engine it is about (a benchmark).

    .venv/bin/python bench/engine_advice.py [--requests 3000]

For request mixes whose tight TPOT is bound by prefill chunks, and one whose batch is
bound by a small `--max-num-seqs`, prints what
`tierscale.policy.advice.engine_advice` advises for one H100 replica (vLLM's defaults:
8192 batched tokens, 1024 sequences), the model's capacity within the SLO with each
`--max-num-batched-tokens` tried, and the step engine's attainment (TTFT and TPOT both
within the SLO; the first 10 % of requests not scored) at Poisson rates around them,
with the pool's arguments and with the advised ones. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import numpy as np

from tierscale.policy.advice import CHUNK_TOKENS, engine_advice
from tierscale_predictor import capacity, engine, latency, profiles

PROFILE = "llama-3.1-8b-h100"
PROMPT_MAX, OUTPUT_MAX = 16_384, 2_048
MIXES = (
    # name, prompt mean, prompt cv, output mean, output cv, TTFT s, TPOT s, planning pct,
    # the pool's --max-num-seqs (None: the profile's)
    ("code completion", 2048, 0.64, 28, 1.3, 0.5, 0.03, 99.5, None),
    ("long heavy-tailed prompts", 5425, 2.33, 53, 2.33, 1.0, 0.03, 99.0, None),
    (
        "short batch requests on a pool run with --max-num-seqs 32",
        200,
        0.6,
        100,
        0.6,
        30.0,
        1.0,
        99.0,
        32,
    ),
)


def lognormal_lengths(
    mean: float, cv: float, n: int, cap: int, rng: np.random.Generator
) -> np.ndarray:
    s2 = math.log(1.0 + cv * cv)
    draws = rng.lognormal(math.log(mean) - s2 / 2.0, math.sqrt(s2), n)
    clipped: np.ndarray = np.clip(draws.astype(int), 1, cap)
    return clipped


def _p99(mean: float, cv: float, cap: int) -> float:
    s = math.sqrt(math.log(1.0 + cv * cv))
    return min(math.exp(math.log(mean) - s * s / 2.0 + 2.3263 * s), cap)


def attainment(
    profile: profiles.StepProfile,
    slo: latency.SloTarget,
    rate_rps: float,
    prompts: np.ndarray,
    outputs: np.ndarray,
    args: dict[str, int],
) -> float:
    rng = np.random.default_rng(1)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_rps, len(prompts)))
    requests = [
        engine.EngineRequest(i, float(a), int(p), int(o))
        for i, (a, p, o) in enumerate(zip(arrivals, prompts, outputs, strict=True))
    ]
    done = [
        t for t in engine.simulate(profile, requests, **args) if t.request_id >= len(prompts) // 10
    ]
    ok = sum(
        1
        for t in done
        if t.ttft_s <= slo.ttft_s and (t.tpot_s <= slo.tpot_s or t.output_tokens <= 1)
    )
    return ok / len(done)


def engine_kwargs(flags: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """vLLM flags as `engine.simulate` keywords: --max-num-seqs 32 -> max_num_seqs=32."""
    return {flag.removeprefix("--").replace("-", "_"): value for flag, value in flags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    profile = profiles.load_profile(PROFILE)
    for name, p, pcv, o, ocv, ttft_s, tpot_s, pct, seqs in MIXES:
        model = latency.LatencyModel.from_profile(profile)
        if seqs is not None:
            model = replace(model, max_num_seqs=seqs)
        rng = np.random.default_rng(0)
        prompts = lognormal_lengths(p, pcv, args.requests, PROMPT_MAX, rng)
        outputs = lognormal_lengths(o, ocv, args.requests, OUTPUT_MAX, rng)
        shape = latency.WorkloadShape(
            p,
            o,
            prompt_tokens_p99=_p99(p, pcv, PROMPT_MAX),
            output_tokens_p99=_p99(o, ocv, OUTPUT_MAX),
        )
        slo = latency.SloTarget(ttft_s, tpot_s, pct)
        print(
            f"\n### {name}: prompts {p} (cv {pcv}), outputs {o} (cv {ocv}), "
            f"TTFT {ttft_s * 1000:.0f} ms / TPOT {tpot_s * 1000:.0f} ms planned at p{pct:g}"
        )
        caps = []
        for tokens in () if seqs is not None else (model.max_num_batched_tokens, *CHUNK_TOKENS):
            trial = replace(
                model, max_num_batched_tokens=tokens, max_num_seqs=min(model.max_num_seqs, tokens)
            )
            caps.append(f"{tokens}: {capacity.max_rate_rps(trial, slo, shape):.2f}")
        if caps:
            print(
                "model capacity per replica (req/s) by --max-num-batched-tokens: " + ", ".join(caps)
            )
        advice = engine_advice(model, slo, shape)
        print(f"advice: {advice.text() if advice else 'none'}")
        if advice is None:
            continue
        print("\n| rate (req/s) | engine attainment, pool's arguments | with the advised ones |")
        print("|---:|---:|---:|")
        for frac in (0.5, 1.0, 1.5):
            rate = frac * advice.capacity_rps
            now = attainment(profile, slo, rate, prompts, outputs, engine_kwargs(advice.now_args))
            advised = attainment(profile, slo, rate, prompts, outputs, engine_kwargs(advice.args))
            print(f"| {rate:.2f} | {100 * now:.2f} % | {100 * advised:.2f} % |", flush=True)


if __name__ == "__main__":
    main()
