"""Engine-validated capacity: the highest Poisson rate one replica serves within a tier's SLO.

The oracle and the static baseline size fleets with this, not with the planner's latency
model, so a bound never inherits the planner's modelling errors: it is measured on the
same engine the fleet runs. Found by bisection on a fixed, seeded request sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tierscale.domain.tiers import Slo
from tierscale_predictor import engine
from tierscale_predictor.profiles import StepProfile
from tierscale_sim.replica_port import Overheads


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    requests: int = 3000
    """Requests per probe run. The answer still moves by up to ~20 % per tier between
    request samples, at 800 as at 3000 (`bench/planner_ablation.py --probe`); runs stay
    comparable because every run of a scenario probes the same sample
    (`runner.capacities`)."""
    iterations: int = 7
    """Bisection steps after bracketing: the rate is known to within 1/128 of the bracket."""
    seed: int = 12345


def _attained(
    profile: StepProfile,
    slo: Slo,
    rate_rps: float,
    prompts: np.ndarray,
    outputs: np.ndarray,
    gaps: np.ndarray,
    engine_args: Mapping[str, int | None],
    overheads: Overheads,
) -> bool:
    arrivals = np.cumsum(gaps) / rate_rps
    delays = [overheads.request_s(int(p)) for p in prompts]
    reqs = [
        engine.EngineRequest(i, float(a) + d, int(p), int(o))
        for i, (a, d, p, o) in enumerate(zip(arrivals, delays, prompts, outputs, strict=True))
    ]
    timings = engine.simulate(profile, reqs, **engine_args)
    # Skip the warm-up tenth: a replica that starts empty flatters the first requests.
    warm = [t for t in timings if t.request_id >= len(reqs) // 10]
    # What the client sees: the request's overhead before the engine, each token's
    # streaming delay after it (`replica_port.Overheads`).
    out_s = overheads.output_s_per_token
    ttft_limit = [slo.ttft_s - delays[t.request_id] - out_s for t in warm]
    tpot_limit = slo.tpot_s - out_s
    ok = sum(
        1
        for t, limit in zip(warm, ttft_limit, strict=True)
        if t.ttft_s <= limit and (t.tpot_s <= tpot_limit or t.output_tokens <= 1)
    )
    return ok >= slo.attainment_frac * len(warm)


def max_rate_rps(
    profile: StepProfile,
    slo: Slo,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    max_num_seqs: int | None = None,
    settings: ProbeSettings | None = None,
    max_num_batched_tokens: int | None = None,
    overheads: Overheads | None = None,
) -> float:
    """Highest rate (req/s) at which one replica keeps `slo.attainment_frac` of requests in SLO.

    The request sample is drawn (seeded) from the given token arrays, so the answer
    reflects the tier's real length mix; `overheads` are costs outside the engine step
    that the client sees (a model mismatch's true engine).
    """
    cfg = settings or ProbeSettings()
    rng = np.random.default_rng(cfg.seed)
    pick = rng.integers(0, len(prompt_tokens), cfg.requests)
    limit = profile.kv_capacity_tokens
    prompts = np.minimum(prompt_tokens[pick], limit // 2)
    outputs = np.minimum(output_tokens[pick], limit // 2)
    gaps = rng.exponential(1.0, cfg.requests)
    engine_args = {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens}

    def attained(rate_rps: float) -> bool:
        return _attained(
            profile, slo, rate_rps, prompts, outputs, gaps, engine_args, overheads or Overheads()
        )

    lo, hi = 0.0, 1.0
    while attained(hi) and hi < 1e4:
        lo, hi = hi, hi * 2
    for _ in range(cfg.iterations):
        mid = (lo + hi) / 2
        if attained(mid):
            lo = mid
        else:
            hi = mid
    return lo
