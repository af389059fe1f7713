"""`static`: a fixed fleet, as a team would provision it by hand (chosen with hindsight)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tierscale.domain.observations import Observations
from tierscale_sim.commands import FleetCommand


@dataclass(frozen=True, slots=True)
class StaticPolicy:
    """Always asks for the same replicas; the search for the best count is the runner's."""

    replicas_by_pool: Mapping[str, int]
    name: str = "static"
    instant_scaling: bool = False
    weights_by_tier: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        return FleetCommand(
            desired_replicas_by_pool=dict(self.replicas_by_pool),
            weights_by_tier=self.weights_by_tier,
        )
