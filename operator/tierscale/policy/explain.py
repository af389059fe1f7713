"""Step 8: a reason code and one human sentence per tier, with the numbers.

Also the decisions of tiers that are not planned: held on stale or missing metrics,
held for another writer of their Deployment, or invalid (a Deployment another tier owns).
"""

from __future__ import annotations

from collections.abc import Mapping

from tierscale.domain.observations import Observations
from tierscale.domain.plans import PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Tier
from tierscale.policy import allocation, stabilize
from tierscale.policy.calibrate import multipliers
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier, held_replicas
from tierscale.policy.route import weights
from tierscale_predictor import latency


def explain(
    live: LiveTier,
    desired: int,
    stable: stabilize.Stabilized,
    raw: Mapping[str, int],
    target: allocation.Allocation,
    routing: allocation.Allocation,
    caps: Mapping[str, Mapping[str, float]],
    models: Mapping[str, latency.LatencyModel],
) -> TierDecision:
    """The decision of a live tier: its replicas, routing, numbers, reason and message."""
    tier, key = live.tier, live.tier.key
    planned = target.flow_rps_by_demand_pool
    spill_out = sum(rps for (t, p), rps in planned.items() if t == key and p != key)
    spill_in = sum(rps for (t, p), rps in planned.items() if p == key and t != key)
    unserved = target.unserved_rps_by_demand.get(key, 0.0)
    own_cap = caps[key].get(key, 0.0)
    pool_load = sum(
        rps / caps[t][key] for (t, p), rps in planned.items() if p == key and caps[t].get(key)
    )
    ttft_s, tpot_s = _predicted(live, desired, pool_load * own_cap, models)
    reason, message = _reason(live, desired, stable, raw[key], unserved, spill_out, target)
    return TierDecision(
        tier_key=key,
        desired_replicas=desired,
        weights_by_pool=weights(key, routing),
        reason=reason,
        message=message,
        forecast_rate_rps=live.demand.rate_rps,
        served_rate_rps=max(live.demand.rate_rps - unserved, 0.0),
        unserved_rate_rps=unserved,
        predicted_ttft_s=ttft_s,
        predicted_tpot_s=tpot_s,
        capacity_rps_per_replica=own_cap,
        spill_in_rps=spill_in,
        spill_out_rps=spill_out,
        admission_cap_rps=min(live.ready_replicas, desired) * own_cap,
        gpus=desired * tier.pool.gpus_per_replica,
        model_correction=multipliers(models[key]),
    )


def _predicted(
    live: LiveTier,
    replicas: int,
    own_equivalent_rps: float,
    models: Mapping[str, latency.LatencyModel],
) -> tuple[float | None, float | None]:
    """Predicted SLO-percentile latency on the tier's own pool at the planned load."""
    if replicas <= 0:
        return None, None
    prediction = latency.predict(
        models[live.tier.key],
        own_equivalent_rps / replicas,
        live.shape,
        live.tier.slo.percentile,
    )
    return prediction.ttft_s * live.bias, prediction.tpot_s * live.bias


def _reason(
    live: LiveTier,
    desired: int,
    stable: stabilize.Stabilized,
    raw: int,
    unserved: float,
    spill_out: float,
    target: allocation.Allocation,
) -> tuple[Reason, str]:
    tier, current = live.tier, live.current_replicas
    rate = live.demand.rate_rps
    change = f"{current} -> {desired} replicas"
    if unserved > 1e-6:
        share = unserved / rate if rate else 1.0
        if desired >= tier.pool.max_replicas:
            return Reason.AT_MAX, (
                f"{change}: at maxReplicas; {unserved:.2f} of {rate:.2f} req/s "
                f"({share:.0%}) cannot be served within SLO"
            )
        return Reason.BUDGET_LIMITED, (
            f"{change}: GPU budget exhausted; {unserved:.2f} of {rate:.2f} req/s ({share:.0%}) "
            f"unserved, priority {tier.priority} degraded after higher priorities"
        )
    if live.breached:
        obs = live.observation
        seen = f"p{tier.slo.percentile:g} TTFT {_ms(obs.ttft_s)} / TPOT {_ms(obs.tpot_s)}"
        if obs.attainment_frac is not None:
            seen = f"attainment {obs.attainment_frac:.2%} < {tier.slo.attainment_frac:.2%} ({seen})"
        return Reason.SLO_BREACH, (
            f"{change}: observed {seen} breaks the SLO ({_ms(tier.slo.ttft_s)} / "
            f"{_ms(tier.slo.tpot_s)}) beyond sampling noise; model bias now x{live.bias:.2f}"
        )
    if desired > current:
        return Reason.FORECAST_UP, (
            f"{change}: forecast {rate:.2f} req/s ({live.demand.method}) over the "
            f"{tier.scaling.cold_start_s:.0f}s cold start needs {raw}"
        )
    if desired < current:
        return Reason.SCALE_DOWN, (
            f"{change}: demand {rate:.2f} req/s has needed fewer replicas for the whole "
            f"{tier.scaling.scale_down_stabilization_s:.0f}s window"
        )
    if raw < desired and stable.held_by_window:
        return Reason.STABILIZED, (
            f"holding {desired} replicas: {raw} would do for {rate:.2f} req/s, but not yet for "
            f"the whole {tier.scaling.scale_down_stabilization_s:.0f}s window"
        )
    if spill_out > 1e-6:
        return Reason.SPILLOVER, (
            f"holding {desired} replicas: {spill_out:.2f} of {rate:.2f} req/s served by "
            f"tighter tiers' spare capacity"
        )
    if desired == tier.pool.min_replicas and raw <= tier.pool.min_replicas:
        return Reason.AT_MIN, f"holding minReplicas {desired} for {rate:.2f} req/s"
    return Reason.STEADY, f"holding {desired} replicas for {rate:.2f} req/s within SLO"


def invalid_spec(tier: Tier, owner: Tier, replicas: int) -> TierDecision:
    """A tier naming a Deployment another tier owns: nothing is planned for it."""
    return TierDecision(
        tier_key=tier.key,
        desired_replicas=replicas,
        weights_by_pool={},
        reason=Reason.INVALID_SPEC,
        message=(
            f"Deployment {tier.namespace}/{tier.pool.deployment} is already the pool of "
            f"SLOTier {owner.key}; {tier.key} is not planned until it names a Deployment "
            "of its own"
        ),
    )


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}ms"


def hold(
    tier: Tier,
    observations: Observations,
    prior: PlannerState,
    now_s: float,
    cfg: PlannerConfig,
    other_writer: str | None,
) -> TierDecision:
    """Missing or stale metrics: keep the last plan, never scale on what we cannot see.
    Another writer on the Deployment: plan around its replicas, write nothing."""
    obs = observations.get(tier.key)
    replicas = held_replicas(tier, observations, prior)
    last = prior.last_decisions.get(tier.key)
    weights = dict(last.weights_by_pool) if last else {tier.key: 1.0}
    if other_writer is not None:
        return TierDecision(
            tier_key=tier.key,
            desired_replicas=replicas,
            weights_by_pool=weights,
            reason=Reason.CONFLICT,
            message=(
                f"{other_writer} sets the replicas of Deployment {tier.pool.deployment} "
                f"({replicas} now): tierscale does not write them until it is gone"
            ),
            gpus=replicas * tier.pool.gpus_per_replica,
            model_correction=prior.correction_by_tier.get(tier.key, (1.0, 1.0)),
        )
    if obs is None or obs.rate_rps is None:
        why = "no request-rate metric"
    elif obs.sampled_at_s > now_s:
        why = f"metrics sampled {obs.sampled_at_s - now_s:.0f}s after the decision time"
    else:
        why = f"metrics {now_s - obs.sampled_at_s:.0f}s old (stale after {cfg.stale_after_s:.0f}s)"
    return TierDecision(
        tier_key=tier.key,
        desired_replicas=replicas,
        weights_by_pool=weights,
        reason=Reason.HOLD_STALE_METRICS,
        message=f"holding {replicas} replicas and the last routing: {why}",
        gpus=replicas * tier.pool.gpus_per_replica,
        model_correction=prior.correction_by_tier.get(tier.key, (1.0, 1.0)),
    )
