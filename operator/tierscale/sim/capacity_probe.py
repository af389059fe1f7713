"""Engine-validated capacity: the highest Poisson rate one replica serves within a tier's SLO.

The oracle and the static baseline size fleets with this, not with the planner's latency
model, so a bound never inherits the planner's modelling errors: it is measured on the
same engine the fleet runs. Found by bisection on a fixed, seeded request sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tierscale.domain.tiers import Slo
from tierscale_predictor import engine
from tierscale_predictor.profiles import StepProfile


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    requests: int = 3000
    """Enough that the answer moves < 5 % between request samples (800 moved it 20 %)."""
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
    max_num_seqs: int | None,
    max_num_batched_tokens: int | None,
) -> bool:
    arrivals = np.cumsum(gaps) / rate_rps
    reqs = [
        engine.EngineRequest(i, float(a), int(p), int(o))
        for i, (a, p, o) in enumerate(zip(arrivals, prompts, outputs, strict=True))
    ]
    timings = engine.simulate(
        profile, reqs, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens
    )
    # Skip the warm-up tenth: a replica that starts empty flatters the first requests.
    warm = [t for t in timings if t.request_id >= len(reqs) // 10]
    ok = sum(1 for t in warm if t.ttft_s <= slo.ttft_s and t.tpot_s <= slo.tpot_s)
    return ok >= slo.attainment_frac * len(warm)


def max_rate_rps(
    profile: StepProfile,
    slo: Slo,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    max_num_seqs: int | None = None,
    settings: ProbeSettings | None = None,
    max_num_batched_tokens: int | None = None,
) -> float:
    """Highest rate (req/s) at which one replica keeps `slo.attainment_frac` of requests in SLO.

    The request sample is drawn (seeded) from the given token arrays, so the answer
    reflects the tier's real length mix.
    """
    cfg = settings or ProbeSettings()
    rng = np.random.default_rng(cfg.seed)
    pick = rng.integers(0, len(prompt_tokens), cfg.requests)
    limit = profile.kv_capacity_tokens
    prompts = np.minimum(prompt_tokens[pick], limit // 2)
    outputs = np.minimum(output_tokens[pick], limit // 2)
    gaps = rng.exponential(1.0, cfg.requests)
    lo, hi = 0.0, 1.0
    while (
        _attained(profile, slo, hi, prompts, outputs, gaps, max_num_seqs, max_num_batched_tokens)
        and hi < 1e4
    ):
        lo, hi = hi, hi * 2
    for _ in range(cfg.iterations):
        mid = (lo + hi) / 2
        if _attained(
            profile, slo, mid, prompts, outputs, gaps, max_num_seqs, max_num_batched_tokens
        ):
            lo = mid
        else:
            hi = mid
    return lo
