"""A model group's `RoutingIntent` -> the routes and pool clusters Envoy serves for it.

The intent (from `loop.translate`) speaks in pool keys (`namespace/deployment`), float
shares and admission caps; Envoy speaks in cluster names, integer weights and
circuit-breaker thresholds. The mapping: each pool = one cluster named
`naming.cluster_name`; a tier's shares become integer weights summing to
`routing.WEIGHT_TOTAL`; a pool's `AdmissionCap` becomes its circuit-breaker caps (rounded
up to a coarse grid, `grid_cap`). Every
tier's own pool gets a cluster even when no traffic is planned on it, so a pool that
comes back into use needs no cluster staging.

Where a pool's endpoints come from is the installation's choice (`EndpointPolicy`): a
headless Service per Deployment in a cluster (DNS returns only Ready pods, so new replicas
get traffic only once they serve), EDS files in the testbed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tierscale.adapters.envoy import routing
from tierscale.domain.tiers import Tier
from tierscale.loop import naming
from tierscale.loop.actions import RoutingIntent

EndpointPolicy = Callable[[str, str], routing.EndpointSource]
"""(namespace, deployment) -> where Envoy finds that pool's serving pods."""


@dataclass(frozen=True, slots=True)
class GroupRouting:
    """The part of the routing table one model group owns."""

    routes: tuple[routing.TierRoute, ...]
    pools: tuple[routing.PoolCluster, ...]
    default_route: str | None = None
    """Route name that also serves requests without a known tier header."""


def group_routing(
    intent: RoutingIntent, tiers: Sequence[Tier], endpoints: EndpointPolicy
) -> GroupRouting:
    """Routes and clusters for `tiers` as `intent` says; see module doc."""
    pools: dict[str, routing.PoolCluster] = {}
    for tier in tiers:
        _add_pool(pools, naming.pool_key(tier), intent, endpoints)
    routes: list[routing.TierRoute] = []
    default_route: str | None = None
    for route in intent.routes:
        for pool_key in route.weights_by_pool:
            _add_pool(pools, pool_key, intent, endpoints)
        shares = {_cluster(key): share for key, share in route.weights_by_pool.items()}
        weights = routing.integer_weights(shares)
        if not weights:
            raise routing.InvalidRoutingTable(f"tier {route.tier_key!r} routes to no pool")
        routes.append(
            routing.TierRoute(
                name=route.route_name,
                header_name=route.header_name,
                header_value=route.header_value,
                weights_by_cluster=weights,
            )
        )
        if route.tier_key == intent.default_tier_key:
            default_route = route.route_name
    return GroupRouting(tuple(routes), tuple(pools[k] for k in sorted(pools)), default_route)


CAP_GRID_RATIO = 1.25
"""Admission caps are rounded up to the grid 1, 2, 3, ... 8, then x1.25 per step: a cap
lives in a cluster (CDS), and every cluster change re-creates the cluster in Envoy, so a
cap that followed every small move of the predicted latency would churn clusters each
tick. Rounding up keeps the cap at least what the plan admits."""


def grid_cap(value: int) -> int:
    """The smallest grid value >= `value` (see `CAP_GRID_RATIO`)."""
    if value <= 8:
        return max(1, value)
    step = 8.0
    while step < value:
        step *= CAP_GRID_RATIO
    return math.ceil(step)


def _cluster(pool_key: str) -> str:
    namespace, _, deployment = pool_key.partition("/")
    return naming.cluster_name(namespace, deployment)


def _add_pool(
    pools: dict[str, routing.PoolCluster],
    pool_key: str,
    intent: RoutingIntent,
    endpoints: EndpointPolicy,
) -> None:
    if pool_key in pools:
        return
    namespace, _, deployment = pool_key.partition("/")
    cap = intent.caps_by_pool.get(pool_key)
    pools[pool_key] = routing.PoolCluster(
        name=naming.cluster_name(namespace, deployment),
        endpoints=endpoints(namespace, deployment),
        caps=None
        if cap is None
        else routing.CircuitBreakerCaps(
            grid_cap(cap.max_requests), grid_cap(cap.max_pending_requests)
        ),
    )


def dns_endpoints(template: str) -> EndpointPolicy:
    """Pools as headless Services: `template` like `{deployment}.{namespace}.svc:8000`."""
    host_part, _, port_part = template.rpartition(":")
    if not host_part or not port_part.isdigit():
        raise ValueError(f"endpoint template {template!r}: expected `host-template:port`")
    port = int(port_part)

    def source(namespace: str, deployment: str) -> routing.EndpointSource:
        host = host_part.format(namespace=namespace, deployment=deployment)
        return routing.DnsService(routing.Endpoint(host, port))

    return source


def eds_endpoints(directory: str) -> EndpointPolicy:
    """Pools as EDS files `<directory>/<cluster name>.yaml` something else keeps current."""
    base = directory.rstrip("/")

    def source(namespace: str, deployment: str) -> routing.EndpointSource:
        cluster = naming.cluster_name(namespace, deployment)
        return routing.EdsFile(path=f"{base}/{cluster}.yaml", watched_directory=base)

    return source


def endpoint_policy(spec: str) -> EndpointPolicy:
    """`dns:<host-template>:<port>` or `eds:<directory>` (the `envoy_pool_endpoints` setting)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind == "dns":
        return dns_endpoints(rest)
    if sep and kind == "eds" and rest.startswith("/"):
        return eds_endpoints(rest)
    raise ValueError(
        f"pool endpoints {spec!r}: expected `dns:{{deployment}}.{{namespace}}.svc:8000` "
        "or `eds:/absolute/directory`"
    )
