"""Step 7: today's traffic split over the replicas that serve until the next decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tierscale.policy import allocation
from tierscale.policy.observe import LiveTier
from tierscale.policy.target import pool_spec

MIN_FLOW_RPS = 1e-9
"""Flows below this are solver noise: no route is written for them, no spill reported."""


def route_now(
    live: Sequence[LiveTier],
    caps: Mapping[str, Mapping[str, float]],
    desired: Mapping[str, int],
) -> allocation.Allocation:
    """Split today's demand over the replicas that serve until the next decision.

    New replicas may still be loading and replicas this plan removes start draining at
    once, so only Ready replicas that stay count: routing spillover onto replicas being
    removed would overload the ones left until the next tick.
    """
    problem = allocation.AllocationProblem(
        pools=[pool_spec(t.tier) for t in live],
        demands=[
            allocation.DemandSpec(
                t.tier.key, t.observation.rate_rps or 0.0, t.tier.priority, caps[t.tier.key]
            )
            for t in live
        ],
        fixed_replicas_by_pool={
            t.tier.key: min(t.ready_replicas, desired[t.tier.key]) for t in live
        },
    )
    return allocation.route(problem)


def weights(key: str, routing: allocation.Allocation) -> dict[str, float]:
    """pool -> share of tier `key`'s traffic Envoy sends there now (sums to 1)."""
    flows = {
        pool: rps
        for (tier, pool), rps in routing.flow_rps_by_demand_pool.items()
        if tier == key and rps > MIN_FLOW_RPS
    }
    # Demand nobody can serve yet waits at its own pool (its replicas may be loading).
    unserved = routing.unserved_rps_by_demand.get(key, 0.0)
    if unserved > 0.0:
        flows[key] = flows.get(key, 0.0) + unserved
    total = sum(flows.values())
    if total <= 0.0:
        return {key: 1.0}
    return {pool: rps / total for pool, rps in sorted(flows.items())}
