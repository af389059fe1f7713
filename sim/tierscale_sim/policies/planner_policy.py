"""`tierscale` and `isolated`: the production planner, called exactly as the operator calls it.

`isolated` is the ablation: the same planner on the same tiers with borrow and lend off,
so every difference between the two is what spillover buys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from tierscale.domain.observations import Observations
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import planner
from tierscale_predictor import latency
from tierscale_sim.commands import FleetCommand


class PlannerPolicy:
    instant_scaling = False

    def __init__(
        self,
        tiers: Sequence[Tier],
        models: Mapping[str, latency.LatencyModel],
        budget: GpuBudget | None,
        *,
        spillover: bool = True,
        config: planner.PlannerConfig | None = None,
    ) -> None:
        self._tiers = (
            tuple(tiers)
            if spillover
            else tuple(replace(t, borrow=False, lend=False) for t in tiers)
        )
        self._models = dict(models)
        self._budget = budget
        self._state: PlannerState | None = None
        self._config = config
        self._name = "tierscale" if spillover else "isolated"

    @property
    def name(self) -> str:
        return self._name

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        result = planner.plan(
            tiers=self._tiers,
            observations=observations,
            model=self._models,
            state=self._state,
            now_s=now_s,
            budget=self._budget,
            config=self._config,
        )
        self._state = result.state
        return FleetCommand(
            desired_replicas_by_pool={k: d.desired_replicas for k, d in result.decisions.items()},
            weights_by_tier={k: dict(d.weights_by_pool) for k, d in result.decisions.items()},
        )
