"""What a scaling policy hands back to the fleet each control interval, and the policy seam.

Mirrors what the operator actuates: Deployment replicas, Envoy route weights and Envoy
circuit-breaker limits. Keeping baselines and tierscale behind one small protocol is what
makes the comparison fair: same traffic, same router, same cold starts, same scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tierscale.domain.observations import Observations


@dataclass(frozen=True, slots=True)
class FleetCommand:
    """One control decision for the whole fleet."""

    desired_replicas_by_pool: Mapping[str, int]
    """pool (owning tier key) -> replicas its Deployment should have."""
    weights_by_tier: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """tier key -> pool -> share of that tier's traffic; a missing tier goes to its own pool."""
    max_concurrent_by_pool: Mapping[str, int] = field(default_factory=dict)
    """pool -> Envoy circuit breaker max_requests (in-flight); missing = unlimited."""


class Policy(Protocol):
    """A scaling policy: sees `Observations`, returns a `FleetCommand`."""

    @property
    def name(self) -> str: ...

    @property
    def instant_scaling(self) -> bool:
        """True only for the oracle bound: replicas serve the moment they are asked for."""
        ...

    def decide(self, now_s: float, observations: Observations) -> FleetCommand: ...
