"""Engine-validated capacity: the highest Poisson rate one replica serves within a tier's SLO.

The oracle and the static baseline size fleets with this, not with the planner's latency
model, so a bound never inherits the planner's modelling errors: it is measured on the
same engine the fleet runs. Found by bisection on a fixed, seeded request sample.
"""

from __future__ import annotations

import math
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
    min_span_ttfts: float = 10.0
    """At each rate tried, the sample's arrivals span at least this many TTFT SLOs: more
    requests where `requests` arrive sooner. A replica fed faster than it serves queues
    a wait that grows with time, and a sample shorter than the TTFT SLO ends before the
    wait reaches it: with 3,000 requests, gen-s7-023's batch-3 (TTFT 20 s, H100) read
    123.5 req/s, 3,000 requests arriving in 24 s; with 12,000, 60.25 req/s. Ten SLOs let
    an overload of ~10 % or more show as misses. Rates below 300 requests per TTFT SLO
    are tried with the `requests` drawn before, so a tier whose every rate tried stays
    below that gets the same answer as before."""
    min_span_lifetimes: float = 10.0
    """At each rate tried, the sample's arrivals also span at least this many request
    lifetimes at the SLO (TTFT SLO + mean output tokens x TPOT SLO). A replica's batch
    fills over about one lifetime, and only then does a rate above what it sustains
    start to queue: spanning ten TTFT SLOs alone, gen-s2027-022's chat-2 (H100, 135 / 188
    tokens, 2 s / 100 ms, requests living ~21 s) read 166 req/s, where 20,000 requests
    at 100 req/s queue to a p95 TTFT of 8.4 s; spanning ten lifetimes it reads 94."""
    max_requests: int = 30000
    """The most requests one rate is tried with (bounds a probe's time)."""


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


class _Sample:
    """The seeded request sample, grown on demand: its first `settings.requests` are
    drawn as they always were (so the answer is unchanged where they suffice), the rest
    in chunks of that size from generators seeded by (seed, chunk), so the requests a
    rate is tried with do not depend on the rates tried before it."""

    def __init__(
        self, prompts: np.ndarray, outputs: np.ndarray, settings: ProbeSettings, cap: int
    ) -> None:
        self._source = (prompts, outputs)
        self._settings = settings
        self._cap = cap
        rng = np.random.default_rng(settings.seed)
        pick = rng.integers(0, len(prompts), settings.requests)
        self._chunks = [(pick, rng.exponential(1.0, settings.requests))]

    def first(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = self._settings.requests
        while len(self._chunks) * size < n:
            rng = np.random.default_rng([self._settings.seed, len(self._chunks)])
            pick = rng.integers(0, len(self._source[0]), size)
            self._chunks.append((pick, rng.exponential(1.0, size)))
        pick = np.concatenate([c[0] for c in self._chunks])[:n]
        gaps = np.concatenate([c[1] for c in self._chunks])[:n]
        prompts = np.minimum(self._source[0][pick], self._cap)
        outputs = np.minimum(self._source[1][pick], self._cap)
        return prompts, outputs, gaps


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
    limit = profile.kv_capacity_tokens
    sample = _Sample(prompt_tokens, output_tokens, cfg, limit // 2)
    engine_args = {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens}

    lifetime_s = slo.ttft_s + float(np.mean(np.minimum(output_tokens, limit // 2))) * slo.tpot_s
    span_s = max(cfg.min_span_ttfts * slo.ttft_s, cfg.min_span_lifetimes * lifetime_s)

    def attained(rate_rps: float) -> bool:
        wanted = math.ceil(rate_rps * span_s)
        prompts, outputs, gaps = sample.first(min(max(cfg.requests, wanted), cfg.max_requests))
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
