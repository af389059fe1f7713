"""`dynamo`: a per-tier autoscaler in the manner of NVIDIA Dynamo's SLA planner.

Re-implemented from Dynamo's public documentation, not its code: "SLA-based Planner"
(ai-dynamo/dynamo, docs/architecture/sla_planner.md) and "Planner Design"
(docs/design-docs/planner-design.md, throughput-based scaling). Every adjustment
interval the planner

1. reads the interval's request count, mean input and output lengths (ISL, OSL) and the
   observed TTFT and ITL;
2. computes correction factors: observed TTFT / TTFT the prefill interpolator expects at
   the ISL, observed ITL / ITL the decode interpolator expects at the engines' current
   load and context length;
3. forecasts the next interval's request count, ISL and OSL (constant predictor until a
   few intervals are seen, then a local-linear-trend Kalman filter, the option Dynamo's
   docs recommend for bursty traffic);
4. sizes prefill as predicted prompt tokens/s x min(1, prefill correction) / profiled
   prefill throughput per engine at that ISL, and decode as predicted output tokens/s /
   the best profiled decode throughput per engine whose ITL meets ITL SLA / decode
   correction at context ISL + OSL / 2.

Adapted to this project's pools, and said so: every tier is one aggregated vLLM pool
(Dynamo documents this computation for disaggregated prefill/decode pools), so a tier's
replicas are the sum of its fractional prefill and decode needs (one engine spends its
steps on both), rounded up; the interpolation tables are profiled per tier on the
engine model of the declared profile and the tier's declared engine arguments (what the
policies are given, as Dynamo's pre-deployment profiling sweeps concurrency and context
length), a prefill alone per ISL, decode batches per (concurrency, context length); and
it sees only what the operator's observations give: latency at the tier's SLO percentile
(Dynamo averages) from the pool's vLLM histograms, demand from the Envoy route counter.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.tiers import Tier
from tierscale_predictor import engine
from tierscale_predictor.profiles import StepProfile
from tierscale_sim.commands import FleetCommand, TierExplanation

ISL_GRID = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
"""Prompt lengths the prefill interpolator is profiled at."""
CONTEXT_GRID = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
"""Context lengths the decode interpolator is profiled at."""
CONCURRENCY_GRID = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
"""Decode batch sizes the decode interpolator is profiled at (up to max_num_seqs)."""
HELD = "Held"
"""Reason between adjustment intervals: the last targets stand."""
DECODE_STEPS = 32
"""Output tokens of each profiled decode request: the ITL is their mean time per token."""


@dataclass(frozen=True, slots=True)
class Interpolators:
    """One tier's pre-deployment profile: prefill TTFT by ISL, decode ITL by
    (context length, concurrency)."""

    isl_tokens: tuple[float, ...]
    ttft_s: tuple[float, ...]
    """TTFT of a lone prefill of each ISL."""
    contexts_tokens: tuple[float, ...]
    itl_s_by_context: tuple[tuple[tuple[int, float], ...], ...]
    """Per context length: (concurrency, ITL) pairs the KV cache holds, increasing."""

    def expected_ttft_s(self, isl: float) -> float:
        return float(np.interp(math.log(max(isl, 1.0)), np.log(self.isl_tokens), self.ttft_s))

    def prefill_tokens_per_s(self, isl: float) -> float:
        """Prefill throughput of one engine at this ISL (tokens/s, one prefill at a time)."""
        return max(isl, 1.0) / self.expected_ttft_s(isl)

    def _curve(self, context: float) -> tuple[np.ndarray, np.ndarray]:
        """ITL against concurrency at `context`, interpolated between profiled contexts."""
        logs = np.log(self.contexts_tokens)
        x = float(np.clip(math.log(max(context, 1.0)), logs[0], logs[-1]))
        hi = min(int(np.searchsorted(logs, x)), len(logs) - 1)
        lo = max(hi - 1, 0)
        w = 0.0 if hi == lo else (x - logs[lo]) / (logs[hi] - logs[lo])
        a, b = dict(self.itl_s_by_context[lo]), dict(self.itl_s_by_context[hi])
        batches = sorted(set(a) & set(b)) or sorted(a)
        itl = [(1 - w) * a[n] + w * b.get(n, a[n]) for n in batches]
        return np.asarray(batches, dtype=float), np.asarray(itl)

    def expected_itl_s(self, concurrency: float, context: float) -> float:
        batches, itl = self._curve(context)
        return float(np.interp(max(concurrency, 1.0), batches, itl))

    def decode_tokens_per_s(self, itl_target_s: float, context: float) -> float:
        """The best decode throughput of one engine (tokens/s) whose ITL meets the target
        (Dynamo's `find_best_throughput_per_gpu`); at batch 1 when none does."""
        batches, itl = self._curve(context)
        ok = itl <= itl_target_s
        if not ok.any():
            return float(1.0 / itl[0])
        i = int(np.flatnonzero(ok)[-1])
        best = batches[i]
        if i + 1 < len(batches) and itl[i + 1] > itl[i]:
            # ITL grows about linearly with the batch: the batch where it reaches the target.
            frac = (itl_target_s - itl[i]) / (itl[i + 1] - itl[i])
            best = batches[i] + frac * (batches[i + 1] - batches[i])
        return float(best / itl_target_s)


@functools.lru_cache(maxsize=64)
def profile_tier(
    profile: StepProfile, max_num_seqs: int | None, max_num_batched_tokens: int | None
) -> Interpolators:
    """Pre-deployment profiling of one tier's engine, on the engine model (cached: every
    seed of a scenario profiles the same engines)."""
    args = {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens}
    kv = profile.kv_capacity_tokens
    isls = [n for n in ISL_GRID if n + 2 <= kv]
    ttfts = [
        engine.simulate(profile, [engine.EngineRequest(0, 0.0, n, 2)], **args)[0].ttft_s
        for n in isls
    ]
    limit = max_num_seqs or profile.max_num_seqs
    contexts: list[float] = []
    curves: list[tuple[tuple[int, float], ...]] = []
    for context in CONTEXT_GRID:
        points: list[tuple[int, float]] = []
        for batch in CONCURRENCY_GRID:
            if batch > limit or batch * (context + DECODE_STEPS) > kv:
                break
            reqs = [engine.EngineRequest(i, 0.0, context, DECODE_STEPS) for i in range(batch)]
            timings = engine.simulate(profile, reqs, **args)
            points.append((batch, float(np.mean([t.tpot_s for t in timings]))))
        if points:
            contexts.append(float(context))
            curves.append(tuple(points))
    return Interpolators(
        tuple(float(n) for n in isls), tuple(ttfts), tuple(contexts), tuple(curves)
    )


class LocalTrendKalman:
    """Local-linear-trend Kalman filter of one series, one interval ahead; the last value
    until `min_points` observations are in (Dynamo's warm-up falls back to constant)."""

    def __init__(self, process_var: float = 0.1, obs_var: float = 1.0, min_points: int = 5):
        self._q = process_var
        self._r = obs_var
        self._min = min_points
        self._n = 0
        self._x = np.zeros(2)
        self._p = np.eye(2) * 1e3
        self._last = 0.0

    def update(self, value: float) -> None:
        f = np.array([[1.0, 1.0], [0.0, 1.0]])
        h = np.array([1.0, 0.0])
        if self._n == 0:
            self._x = np.array([value, 0.0])
        else:
            x = f @ self._x
            p = f @ self._p @ f.T + self._q * np.eye(2) * max(abs(value), 1.0)
            s = float(h @ p @ h) + self._r * max(abs(value), 1.0)
            k = p @ h / s
            self._x = x + k * (value - float(h @ x))
            self._p = (np.eye(2) - np.outer(k, h)) @ p
        self._n += 1
        self._last = value

    def predict(self) -> float:
        if self._n < self._min:
            return self._last
        return max(0.0, float(self._x[0] + self._x[1]))


@dataclass(slots=True)
class _TierState:
    rate: LocalTrendKalman
    isl: LocalTrendKalman
    osl: LocalTrendKalman
    desired: int | None = None
    explanation: TierExplanation | None = None


class DynamoPolicy:
    """Dynamo-SLA-planner-like scaling, one planner per tier."""

    name = "dynamo"
    instant_scaling = False

    def __init__(
        self,
        tiers: Sequence[Tier],
        interpolators_by_tier: Mapping[str, Interpolators],
        adjustment_interval_s: float = 60.0,
    ) -> None:
        self._tiers = tuple(tiers)
        self._interp = dict(interpolators_by_tier)
        self._interval_s = adjustment_interval_s
        self._next_s = 0.0
        self._state = {
            t.key: _TierState(LocalTrendKalman(), LocalTrendKalman(), LocalTrendKalman())
            for t in tiers
        }

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        adjust = now_s >= self._next_s - 1e-9
        if adjust:
            self._next_s = now_s + self._interval_s
        desired: dict[str, int] = {}
        for tier in self._tiers:
            state = self._state[tier.key]
            obs = observations.get(tier.key)
            if adjust and obs is not None and obs.rate_rps is not None:
                state.desired, state.explanation = self._plan(tier, obs, state)
            elif state.explanation is not None and state.explanation.reason != HELD:
                state.explanation = replace(
                    state.explanation, reason=HELD, message="between adjustment intervals"
                )
            if state.desired is not None:
                desired[tier.key] = state.desired
        return FleetCommand(desired_replicas_by_pool=desired)

    def explain(self) -> dict[str, TierExplanation]:
        return {k: s.explanation for k, s in self._state.items() if s.explanation is not None}

    def _plan(
        self, tier: Tier, obs: TierObservation, state: _TierState
    ) -> tuple[int, TierExplanation]:
        interp = self._interp[tier.key]
        rate = obs.rate_rps or 0.0
        isl = obs.prompt_tokens_mean
        osl = obs.output_tokens_mean
        state.rate.update(rate)
        if isl is not None and osl is not None:
            state.isl.update(isl)
            state.osl.update(osl)
        next_rate = state.rate.predict()
        next_isl = state.isl.predict() or 1.0
        next_osl = state.osl.predict() or 1.0
        # Correction factors: observed latency / what the profile expects right now.
        ready = obs.ready_replicas or 0
        concurrency = (obs.running_requests or 0.0) / ready if ready else 1.0
        context = next_isl + next_osl / 2
        expected_ttft = interp.expected_ttft_s(next_isl)
        expected_itl = interp.expected_itl_s(concurrency, context)
        p_corr = obs.ttft_s / expected_ttft if obs.ttft_s else 1.0
        d_corr = obs.tpot_s / expected_itl if obs.tpot_s else 1.0
        prefill = next_rate * next_isl * min(1.0, p_corr) / interp.prefill_tokens_per_s(next_isl)
        decode_tps = interp.decode_tokens_per_s(tier.slo.tpot_s / max(d_corr, 1e-6), context)
        decode = next_rate * next_osl / decode_tps
        need = math.ceil(prefill + decode - 1e-9)
        desired = max(tier.pool.min_replicas, min(tier.pool.max_replicas, need))
        current = obs.current_replicas or 0
        reason = "ScaleUp" if desired > current else "ScaleDown" if desired < current else "Steady"
        message = (
            f"predicted {next_rate:.2f} req/s (ISL {next_isl:.0f}, OSL {next_osl:.0f}):"
            f" prefill {prefill:.2f} + decode {decode:.2f} replicas; corrections"
            f" TTFT x{p_corr:.2f}, ITL x{d_corr:.2f}"
        )
        explanation = TierExplanation(
            reason=reason,
            message=message,
            desired_replicas=desired,
            observed_rate_rps=obs.rate_rps,
            planned_rate_rps=next_rate,
            observed_ttft_s=obs.ttft_s,
            predicted_ttft_s=expected_ttft,
            observed_tpot_s=obs.tpot_s,
            predicted_tpot_s=expected_itl,
            capacity_rps_per_replica=(next_rate / (prefill + decode)) if prefill + decode else None,
        )
        return desired, explanation
