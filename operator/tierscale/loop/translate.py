"""A Plan -> the Actions that carry it out: the one translation both shells use.

Rules, in the order they apply:
- only a tier's own, live decision scales its Deployment: a held tier (stale metrics,
  Conflict) or an InvalidSpec tier gets no ScaleIntent, so nothing is written for it;
- every tier always has a route: its planned weights over pools, else its own pool;
- each pool's admission cap admits the plan's `admission_cap_rps` for requests lasting
  as long as the plan predicts (Little's law: in-flight = rate x time in system);
- an Event only where the decision changed (reason or replicas) since the last one;
- a status per SLOTier from the decision and what was observed (`api.status`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tierscale.api import status as status_api
from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import Plan, TierDecision
from tierscale.domain.reasons import NOT_PLANNED, WARNING_REASONS, Reason
from tierscale.domain.tiers import Tier
from tierscale.loop import naming, telemetry
from tierscale.loop.actions import (
    Actions,
    AdmissionCap,
    MetricSample,
    RoutingIntent,
    ScaleIntent,
    TierEvent,
    TierRouteIntent,
)


@dataclass(frozen=True, slots=True)
class StatusContext:
    """What the cluster knows of an SLOTier's status before this decision."""

    generation: int | None = None
    conditions: Sequence[Mapping[str, object]] = ()


@dataclass(frozen=True, slots=True)
class TranslateConfig:
    pending_frac: float = 0.25
    """Envoy's pending-request queue per pool, as a share of its in-flight cap: a burst is
    smoothed, overload still fails fast."""
    default_tier_key: str | None = None


@dataclass(frozen=True, slots=True)
class Previous:
    """The last decisions (from the planner state fed into this plan) and the statuses."""

    decisions: Mapping[str, TierDecision] = field(default_factory=dict)
    status_by_tier: Mapping[str, StatusContext] = field(default_factory=dict)


def actions(
    *,
    tiers: Sequence[Tier],
    plan: Plan,
    observations: Observations,
    now_s: float,
    previous: Previous | None = None,
    config: TranslateConfig | None = None,
) -> Actions:
    prior = previous or Previous()
    cfg = config or TranslateConfig()
    owner_key_by_pool: dict[str, str] = {}
    for tier in tiers:
        owner_key_by_pool.setdefault(naming.pool_key(tier), tier.key)
    pool_by_owner = {owner: pool for pool, owner in owner_key_by_pool.items()}
    decided = [(t, plan.decisions[t.key]) for t in tiers if t.key in plan.decisions]
    return Actions(
        scale=tuple(
            ScaleIntent(naming.pool_key(t), d.desired_replicas, t.key, d.reason)
            for t, d in decided
            if d.reason not in NOT_PLANNED and owner_key_by_pool[naming.pool_key(t)] == t.key
        ),
        routing=RoutingIntent(
            routes=tuple(_route(t, plan.decisions.get(t.key), pool_by_owner) for t in tiers),
            caps_by_pool={
                naming.pool_key(t): cap
                for t, d in decided
                if (cap := admission_cap(d, observations.get(t.key), cfg.pending_frac)) is not None
            },
            default_tier_key=cfg.default_tier_key,
        ),
        statuses=statuses(tiers, plan, observations, now_s, prior),
        events=tuple(
            TierEvent(t.key, d.reason, d.message, d.reason in WARNING_REASONS)
            for t, d in decided
            if _changed(d, prior.decisions.get(t.key))
        ),
        metrics=tuple(_metrics(tiers, plan, observations)),
    )


def statuses(
    tiers: Sequence[Tier],
    plan: Plan,
    observations: Observations,
    now_s: float,
    previous: Previous,
    routing_rejected: str | None = None,
) -> dict[str, dict[str, Any]]:
    """tier key -> the SLOTier's whole status; `routing_rejected` (why Envoy refused the
    routing, once known) makes every tier's Hold condition say so."""
    return {
        t.key: _status(
            t,
            plan.decisions[t.key],
            observations.get(t.key),
            now_s,
            previous.status_by_tier.get(t.key),
            routing_rejected,
        )
        for t in tiers
        if t.key in plan.decisions
    }


BURST_Z = 3.0
"""Headroom of the in-flight cap over Little's mean, in standard deviations of a Poisson
count (see `admission_cap`)."""


def admission_cap(
    decision: TierDecision, observation: TierObservation | None, pending_frac: float
) -> AdmissionCap | None:
    """In-flight and pending limits that admit about `admission_cap_rps` (Little's law).

    Time in system is the plan's predicted TTFT plus its predicted TPOT for every output
    token after the first, at the SLO percentile: percentile durations make the cap loose
    rather than tight, so it sheds overload but never a request the pool could serve.
    Little's law gives the *mean* in-flight count L; arrivals at the admitted rate are
    bursty (Poisson: the in-flight count is Poisson(L), M/G/inf), so the cap is
    L + 3 sqrt(L): a burst the pool serves within its SLO is admitted, while a cap of L
    alone refuses requests at a rate the pool serves (on the testbed, a step to a rate
    one replica sustains drew 503s from Envoy's circuit breaker).
    """
    cap_rps = decision.admission_cap_rps
    ttft, tpot = decision.predicted_ttft_s, decision.predicted_tpot_s
    if decision.reason in NOT_PLANNED or cap_rps is None or ttft is None or tpot is None:
        return None
    output = (observation.output_tokens_mean if observation else None) or 1.0
    duration_s = ttft + tpot * max(output - 1.0, 0.0)
    mean_in_flight = cap_rps * duration_s
    if not math.isfinite(mean_in_flight):
        # An overloaded pool's predicted latency is unbounded: Little's law gives no cap.
        return None
    max_requests = max(1, math.ceil(mean_in_flight + BURST_Z * math.sqrt(mean_in_flight)))
    return AdmissionCap(max_requests, max(1, math.ceil(max_requests * pending_frac)))


def _route(
    tier: Tier, decision: TierDecision | None, pool_by_owner: Mapping[str, str]
) -> TierRouteIntent:
    own = naming.pool_key(tier)
    weights: dict[str, float] = {}
    for owner_key, share in ({} if decision is None else decision.weights_by_pool).items():
        pool = pool_by_owner.get(owner_key)
        if pool is not None and share > 0.0:
            weights[pool] = weights.get(pool, 0.0) + share
    total = sum(weights.values())
    return TierRouteIntent(
        tier_key=tier.key,
        route_name=naming.tier_stat_name(tier.namespace, tier.name),
        header_name=tier.routing_header,
        header_value=tier.routing_value or tier.name,
        weights_by_pool={p: w / total for p, w in sorted(weights.items())}
        if total > 0.0
        else {own: 1.0},
    )


def _status(
    tier: Tier,
    decision: TierDecision,
    observation: TierObservation | None,
    now_s: float,
    context: StatusContext | None,
    routing_rejected: str | None = None,
) -> dict[str, Any]:
    ctx = context or StatusContext()
    now = datetime.fromtimestamp(now_s, UTC)
    if decision.reason is Reason.INVALID_SPEC:
        return status_api.invalid_spec_status(
            decision.message,
            now=now,
            generation=ctx.generation,
            previous_conditions=ctx.conditions,
        )
    return status_api.build_status(
        tier,
        decision,
        observation,
        now=now,
        generation=ctx.generation,
        previous_conditions=ctx.conditions,
        routing_rejected=routing_rejected,
    )


def _changed(decision: TierDecision, before: TierDecision | None) -> bool:
    return (
        before is None
        or before.reason is not decision.reason
        or before.desired_replicas != decision.desired_replicas
    )


def _metrics(tiers: Sequence[Tier], plan: Plan, observations: Observations) -> list[MetricSample]:
    gpus_own, gpus_borrowed = gpu_attribution(tiers, plan)
    out: list[MetricSample] = []
    for tier in tiers:
        d = plan.decisions.get(tier.key)
        if d is None:
            continue
        obs = observations.get(tier.key)
        labels = {"namespace": tier.namespace, "tier": tier.name, "model": tier.model}
        values: dict[str, float | None] = {
            telemetry.DESIRED_REPLICAS: float(d.desired_replicas),
            telemetry.READY_REPLICAS: _float(obs.ready_replicas) if obs else None,
            telemetry.FORECAST_RATE: d.forecast_rate_rps,
            telemetry.OBSERVED_RATE: obs.rate_rps if obs else None,
            telemetry.CAPACITY_PER_REPLICA: d.capacity_rps_per_replica,
            telemetry.PREDICTED_TTFT: d.predicted_ttft_s,
            telemetry.PREDICTED_TPOT: d.predicted_tpot_s,
            telemetry.OBSERVED_TTFT: obs.ttft_s if obs else None,
            telemetry.OBSERVED_TPOT: obs.tpot_s if obs else None,
            telemetry.TARGET_TTFT: tier.slo.ttft_s,
            telemetry.TARGET_TPOT: tier.slo.tpot_s,
            telemetry.ATTAINMENT: obs.attainment_frac if obs else None,
            telemetry.ATTAINMENT_TARGET: tier.slo.attainment_frac,
            telemetry.SPILL_IN: d.spill_in_rps,
            telemetry.SPILL_OUT: d.spill_out_rps,
            telemetry.UNSERVED: d.unserved_rate_rps,
            telemetry.GPUS_OWN: gpus_own.get(tier.key, 0.0),
            telemetry.GPUS_BORROWED: gpus_borrowed.get(tier.key, 0.0),
            telemetry.HOLD: 1.0 if d.reason in NOT_PLANNED else 0.0,
        }
        out.extend(MetricSample(n, labels, v) for n, v in values.items() if v is not None)
        out.append(MetricSample(telemetry.REASON_INFO, labels | {"reason": d.reason.value}, 1.0))
    return out


def gpu_attribution(tiers: Sequence[Tier], plan: Plan) -> tuple[dict[str, float], dict[str, float]]:
    """(own, borrowed) GPUs per tier: every pool's GPUs split by the planned traffic on it.

    A pool's GPUs serve its own tier and the looser tiers spilled onto it; each tier is
    attributed the share of the pool's planned traffic that is its own (in requests/s
    weighted by the capacity each needs there would be finer; the plan's weights are what
    Envoy actually splits). An idle pool's GPUs are its owner's.
    """
    by_key = {t.key: t for t in tiers}
    flows: dict[str, dict[str, float]] = {}  # pool owner -> tier -> rps
    for key, d in plan.decisions.items():
        rate = max(d.forecast_rate_rps - d.unserved_rate_rps, 0.0)
        for owner, share in d.weights_by_pool.items():
            flows.setdefault(owner, {})[key] = flows.setdefault(owner, {}).get(key, 0.0) + (
                rate * share
            )
    own: dict[str, float] = {}
    borrowed: dict[str, float] = {}
    for owner, d in plan.decisions.items():
        tier = by_key.get(owner)
        if tier is None or d.reason is Reason.INVALID_SPEC:
            continue
        gpus = float(d.desired_replicas * tier.pool.gpus_per_replica)
        on_pool = flows.get(owner, {})
        total = sum(on_pool.values())
        if total <= 0.0:
            own[owner] = own.get(owner, 0.0) + gpus
            continue
        for key, rps in on_pool.items():
            target = own if key == owner else borrowed
            target[key] = target.get(key, 0.0) + gpus * rps / total
    return own, borrowed


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)
