"""Turn the planner's `Plan` into the `RoutingTable` Envoy serves.

The plan speaks in tier keys and rates; Envoy speaks in clusters, integer weights and
concurrency. The mapping: each tier owns one pool (its Deployment) = one cluster; a tier's
`weights_by_pool` (keyed by the pool owner's tier key) becomes integer weights; the pool
owner's `admission_cap_rps` becomes circuit-breaker caps by Little's law
(concurrency = rate x time in system).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tierscale.adapters.envoy import routing
from tierscale.domain.plans import Plan
from tierscale.domain.tiers import Tier


def pool_key(tier: Tier) -> str:
    """`namespace/deployment`: how the testbed and the kube adapter name a pool."""
    return f"{tier.namespace}/{tier.pool.deployment}"


def caps_for(
    admission_cap_rps: float | None, request_duration_s: float, pending_frac: float = 0.25
) -> routing.CircuitBreakerCaps | None:
    """Concurrency caps that admit about `admission_cap_rps` of requests lasting this long.

    Pending requests (waiting for a connection) get a small queue, a fraction of the
    concurrency, so a burst is smoothed but overload still fails fast instead of queueing.
    """
    if admission_cap_rps is None:
        return None
    max_requests = max(1, math.ceil(admission_cap_rps * request_duration_s))
    return routing.CircuitBreakerCaps(
        max_requests=max_requests,
        max_pending_requests=max(1, math.ceil(max_requests * pending_frac)),
    )


def from_plan(
    plan: Plan,
    tiers: Sequence[Tier],
    endpoints_by_pool: Mapping[str, routing.EndpointSource],
    request_duration_s: float,
    *,
    pending_frac: float = 0.25,
    default_tier_key: str | None = None,
) -> routing.RoutingTable:
    """Routing for `tiers` as `plan` decided.

    `endpoints_by_pool` is keyed by `pool_key`; a pool without an entry gets no endpoints
    (Envoy answers 503 until it has some). A tier without a decision, or whose weights are
    all zero, is routed to its own pool: every tier always has a route.
    """
    cluster_by_tier_key = {
        t.key: routing.cluster_name(t.namespace, t.pool.deployment) for t in tiers
    }
    pools: list[routing.PoolCluster] = []
    routes: list[routing.TierRoute] = []
    default_name: str | None = None
    for tier in tiers:
        decision = plan.decisions.get(tier.key)
        own_cluster = cluster_by_tier_key[tier.key]
        pools.append(
            routing.PoolCluster(
                name=own_cluster,
                endpoints=endpoints_by_pool.get(pool_key(tier), routing.StaticEndpoints(())),
                caps=caps_for(
                    None if decision is None else decision.admission_cap_rps,
                    request_duration_s,
                    pending_frac,
                ),
            )
        )
        shares: dict[str, float] = {}
        for owner_key, share in ({} if decision is None else decision.weights_by_pool).items():
            if owner_key not in cluster_by_tier_key:
                raise routing.InvalidRoutingTable(
                    f"tier {tier.key!r} is planned onto unknown pool owner {owner_key!r}"
                )
            cluster = cluster_by_tier_key[owner_key]
            shares[cluster] = shares.get(cluster, 0.0) + share
        weights = routing.integer_weights(shares) or {own_cluster: routing.WEIGHT_TOTAL}
        name = routing.tier_stat_name(tier.namespace, tier.name)
        if tier.key == default_tier_key:
            default_name = name
        routes.append(
            routing.TierRoute(
                name=name,
                header_name=tier.routing_header,
                header_value=tier.routing_value or tier.name,
                weights_by_cluster=weights,
            )
        )
    return routing.RoutingTable(tiers=tuple(routes), pools=tuple(pools), default_tier=default_name)
