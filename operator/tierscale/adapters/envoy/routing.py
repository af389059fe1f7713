"""The routing table the operator publishes to Envoy, independent of Envoy's config format.

Kept apart from rendering so the planner-facing shape (tiers split over pools, pool caps)
can be checked without Envoy, and so a table that references an unknown pool or carries a
weight Envoy would reject never gets as far as a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from tierscale.loop import naming

WEIGHT_TOTAL = 1000
"""Integer weights of one tier always sum to this: 0.1 % resolution, stable diffs."""

stat_safe = naming.stat_safe
cluster_name = naming.cluster_name
tier_stat_name = naming.tier_stat_name


def integer_weights(shares: Mapping[str, float], total: int = WEIGHT_TOTAL) -> dict[str, int]:
    """Turn float shares into integers that sum exactly to `total` (largest remainder).

    Envoy's weights are integers; naive rounding can make them sum to total +- 1, which
    silently shifts the split. Negative and non-finite shares count as zero; clusters whose
    integer weight is zero are omitted because Envoy rejects or ignores them. Returns {}
    when nothing is left to route.
    """
    clean = {k: v for k, v in shares.items() if math.isfinite(v) and v > 0.0}
    mass = sum(clean.values())
    if mass <= 0.0:
        return {}
    exact = {k: v / mass * total for k, v in clean.items()}
    floors = {k: math.floor(x) for k, x in exact.items()}
    left = total - sum(floors.values())
    # Ties broken by name so the same shares always give the same file.
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - floors[k]), k))
    for k in by_remainder[:left]:
        floors[k] += 1
    return {k: w for k, w in sorted(floors.items()) if w > 0}


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class StaticEndpoints:
    """Fixed IP endpoints (e.g. the testbed's loopback pods)."""

    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class DnsService:
    """A headless Service: DNS returns only Ready pods, so Envoy follows readiness itself."""

    address: Endpoint


@dataclass(frozen=True, slots=True)
class EdsFile:
    """Endpoints from a ClusterLoadAssignment file something else keeps current."""

    path: str
    watched_directory: str


EndpointSource = StaticEndpoints | DnsService | EdsFile


@dataclass(frozen=True, slots=True)
class CircuitBreakerCaps:
    """Concurrency caps that make a pool's admission cap real (overflow fails fast, 503)."""

    max_requests: int
    max_pending_requests: int


@dataclass(frozen=True, slots=True)
class PoolCluster:
    """One pool (the Deployment a tier owns) as an Envoy cluster."""

    name: str
    endpoints: EndpointSource
    caps: CircuitBreakerCaps | None = None
    """None keeps Envoy's defaults (1024 requests / 1024 pending)."""
    connect_timeout_s: float = 1.0


@dataclass(frozen=True, slots=True)
class TierRoute:
    """Requests carrying `header_name: header_value` are split over pools by weight."""

    name: str
    """Route name and stat prefix; see `tier_stat_name`."""
    header_name: str
    header_value: str
    weights_by_cluster: Mapping[str, int]
    """cluster name -> integer weight (> 0); see `integer_weights`."""


class InvalidRoutingTable(ValueError):
    """The table contradicts itself; it would be rejected by Envoy or route nowhere."""


@dataclass(frozen=True, slots=True)
class RoutingTable:
    tiers: tuple[TierRoute, ...]
    pools: tuple[PoolCluster, ...]
    default_tier: str | None = None
    """Route name whose split also serves requests without a known tier header."""
    pool_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pool_names = [p.name for p in self.pools]
        tier_names = [t.name for t in self.tiers]
        _require_unique("pool", pool_names)
        _require_unique("tier", tier_names)
        _require_unique(
            "tier header", [(t.header_name.lower(), t.header_value) for t in self.tiers]
        )
        for name in [*pool_names, *tier_names]:
            if not name or stat_safe(name) != name:
                raise InvalidRoutingTable(f"name {name!r} is not stat-safe (see stat_safe)")
        known = frozenset(pool_names)
        for tier in self.tiers:
            _check_weights(tier, known)
        if self.default_tier is not None and self.default_tier not in tier_names:
            raise InvalidRoutingTable(f"default tier {self.default_tier!r} has no route")
        object.__setattr__(self, "pool_names", known)


def _require_unique(what: str, items: list[str] | list[tuple[str, str]]) -> None:
    seen: set[object] = set()
    for item in items:
        if item in seen:
            raise InvalidRoutingTable(f"duplicate {what} {item!r}")
        seen.add(item)


def _check_weights(tier: TierRoute, known: frozenset[str]) -> None:
    if not tier.weights_by_cluster:
        raise InvalidRoutingTable(f"tier {tier.name!r} routes to no pool")
    for cluster, weight in tier.weights_by_cluster.items():
        if cluster not in known:
            raise InvalidRoutingTable(f"tier {tier.name!r} routes to unknown pool {cluster!r}")
        if weight <= 0:
            raise InvalidRoutingTable(f"tier {tier.name!r}: weight {weight} for {cluster!r}")


class Publication(StrEnum):
    """How far `RoutingWriter.apply` got."""

    LIVE = "Live"
    """Routes and clusters are published."""
    STAGED = "Staged"
    """New clusters are published, routes are not yet: Envoy rejects a route to a cluster
    that is still warming, so call `apply` again once the clusters had time to load."""


class RoutingWriter(Protocol):
    """Where a routing table goes live (files, a ConfigMap, or memory in tests)."""

    def apply(self, table: RoutingTable) -> Publication:
        """Publish `table`; raise and leave the live config untouched if it is rejected."""
        ...
