"""What one decision asks the world to do, as plain data: the output of `translate.actions`.

The operator's adapters carry it out (Kubernetes `/scale`, the Envoy routing ConfigMap,
SLOTier status, Events, `/metrics`); the fleet simulator carries out the same object on
its simulated pools and router. Pools are named by `naming.pool_key`
(`namespace/deployment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tierscale.domain.reasons import Reason


@dataclass(frozen=True, slots=True)
class ScaleIntent:
    """Set one Deployment's replicas (through `/scale`)."""

    pool_key: str
    replicas: int
    tier_key: str
    """The tier that owns the Deployment (the only one that may scale it)."""
    reason: Reason


@dataclass(frozen=True, slots=True)
class TierRouteIntent:
    """How Envoy splits one tier's requests over pools."""

    tier_key: str
    route_name: str
    """Route name and `stat_prefix` (`naming.tier_stat_name`)."""
    header_name: str
    header_value: str
    weights_by_pool: Mapping[str, float]
    """pool key -> share of the tier's requests (sums to 1)."""


@dataclass(frozen=True, slots=True)
class AdmissionCap:
    """Envoy circuit-breaker limits on one pool: overflow fails fast (503) instead of queueing."""

    max_requests: int
    """In-flight requests the pool takes (Little's law on the plan's admission rate)."""
    max_pending_requests: int


@dataclass(frozen=True, slots=True)
class RoutingIntent:
    routes: tuple[TierRouteIntent, ...]
    """One route per tier, in tier order."""
    caps_by_pool: Mapping[str, AdmissionCap] = field(default_factory=dict)
    """pool key -> admission cap; a pool without one is not capped."""
    default_tier_key: str | None = None
    """Requests without a tier header go to this tier's route (None: they are refused)."""


@dataclass(frozen=True, slots=True)
class TierEvent:
    """One Kubernetes Event on an SLOTier: emitted only when its decision changed."""

    tier_key: str
    reason: Reason
    message: str
    warning: bool


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One value of one of tierscale's own metrics (`loop.telemetry` names them)."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Actions:
    scale: tuple[ScaleIntent, ...]
    """Deployments to set; a held, conflicting or invalid tier's Deployment is not listed."""
    routing: RoutingIntent
    statuses: Mapping[str, dict[str, Any]]
    """tier key -> the SLOTier's whole `status` (camelCase, JSON-ready)."""
    events: tuple[TierEvent, ...]
    metrics: tuple[MetricSample, ...]
