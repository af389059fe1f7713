"""Scores of one simulated run: per-tier attainment and latency, fleet goodput and cost.

A rejected request counts as a miss everywhere: a policy must not look better by refusing
work. Three criteria exist because the papers score differently: `ttft_tpot` (the tier's
TTFT and TPOT at once, what SLOTier promises), `deadline` (PolyServe: token i by
TTFT + i*TPOT, from the engine's `deadline_met`) and `e2e` (SABER: whole answer within the
task's end-to-end SLA).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from tierscale.domain.tiers import Tier
from tierscale_sim.fleet import FleetRun
from tierscale_sim.workloads import FloatArray


class Criterion(StrEnum):
    TTFT_TPOT = "ttft_tpot"
    DEADLINE = "deadline"
    E2E = "e2e"


@dataclass(frozen=True, slots=True)
class TierScore:
    tier_key: str
    requests: int
    rejected: int
    attainment_frac: float
    target_frac: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    tpot_p50_s: float | None
    tpot_p99_s: float | None
    e2e_p50_s: float | None
    e2e_p99_s: float | None
    e2e_over_slo_cv: float | None = None
    """Coefficient of variation of e2e latency / SLA (SABER's 'latency variability')."""

    @property
    def met(self) -> bool:
        return self.requests == 0 or self.attainment_frac >= self.target_frac


@dataclass(frozen=True, slots=True)
class RunScore:
    policy: str
    seed: int
    rate_multiplier: float
    by_tier: Mapping[str, TierScore]
    requests: int
    rejected: int
    attainment_frac: float
    """Over all requests of all tiers."""
    goodput_rps: float
    """Requests that met their SLO per second of the horizon."""
    offered_rps: float
    gpu_hours: float
    scale_ups: int
    scale_downs: int
    replicas_started: int
    max_kv_usage_frac: float

    @property
    def all_tiers_met(self) -> bool:
        return all(t.met for t in self.by_tier.values())


def request_met(
    run: FleetRun,
    tiers: Sequence[Tier],
    criterion: Criterion,
    e2e_slo_by_tier_s: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Boolean per request: did it meet its SLO under `criterion` (rejected = False)."""
    o, w = run.outcomes, run.workload
    served = ~o.rejected
    if criterion is Criterion.DEADLINE:
        return served & o.deadline_met
    if criterion is Criterion.E2E:
        slo = e2e_slo_by_tier_s or {}
        limits = np.asarray([slo.get(t.key, np.inf) for t in tiers])[w.tier_index]
        return served & (o.e2e_s <= limits)
    ttft_lim = np.asarray([t.slo.ttft_s for t in tiers])[w.tier_index]
    if w.ttft_slo_s is not None:
        ttft_lim = w.ttft_slo_s
    tpot_lim = np.asarray([t.slo.tpot_s for t in tiers])[w.tier_index]
    return served & (o.ttft_s <= ttft_lim) & (o.tpot_s <= tpot_lim + 1e-12)


def score_run(
    run: FleetRun,
    tiers: Sequence[Tier],
    policy: str,
    seed: int,
    criterion: Criterion = Criterion.TTFT_TPOT,
    e2e_slo_by_tier_s: Mapping[str, float] | None = None,
    rate_multiplier: float = 1.0,
    warmup_s: float = 0.0,
) -> RunScore:
    """Score the requests that arrived after `warmup_s` (all of them by default).

    A steady-state benchmark (S2) must not charge a policy for the fleet it was handed
    at t = 0: its requests before `warmup_s` are simulated, just not counted. GPU-hours
    and scaling events always cover the whole run.
    """
    o, w = run.outcomes, run.workload
    scored = w.arrival_s >= warmup_s
    met = request_met(run, tiers, criterion, e2e_slo_by_tier_s) & scored
    num_scored = int(scored.sum())
    by_tier: dict[str, TierScore] = {}
    for i, tier in enumerate(tiers):
        sel = (w.tier_index == i) & scored
        n = int(sel.sum())
        e2e_slo = (e2e_slo_by_tier_s or {}).get(tier.key)
        by_tier[tier.key] = TierScore(
            tier_key=tier.key,
            requests=n,
            rejected=int(o.rejected[sel].sum()),
            attainment_frac=float(met[sel].mean()) if n else 1.0,
            target_frac=tier.slo.attainment_frac,
            ttft_p50_s=_pct(o.ttft_s[sel], 50),
            ttft_p99_s=_pct(o.ttft_s[sel], 99),
            tpot_p50_s=_pct(o.tpot_s[sel], 50),
            tpot_p99_s=_pct(o.tpot_s[sel], 99),
            e2e_p50_s=_pct(o.e2e_s[sel], 50),
            e2e_p99_s=_pct(o.e2e_s[sel], 99),
            e2e_over_slo_cv=_cv(o.e2e_s[sel] / e2e_slo) if e2e_slo else None,
        )
    span_s = max(w.duration_s - min(warmup_s, w.duration_s), 1e-9)
    return RunScore(
        policy=policy,
        seed=seed,
        rate_multiplier=rate_multiplier,
        by_tier=by_tier,
        requests=num_scored,
        rejected=int(o.rejected[scored].sum()),
        attainment_frac=float(met.sum()) / num_scored if num_scored else 1.0,
        goodput_rps=float(met.sum()) / span_s,
        offered_rps=num_scored / span_s,
        gpu_hours=run.gpu_hours,
        scale_ups=run.scale_ups,
        scale_downs=run.scale_downs,
        replicas_started=run.replicas_started,
        max_kv_usage_frac=run.max_kv_usage_frac,
    )


def _pct(values: FloatArray, q: float) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.percentile(values, q)) if values.size else None


def _cv(values: FloatArray) -> float | None:
    values = values[~np.isnan(values)]
    if values.size < 2 or values.mean() <= 0:
        return None
    return float(values.std() / values.mean())
