"""`tierscale` and `isolated`: the production loop's decide and act steps, in the simulator.

The simulator's observations come from `loop.observe` (as in the operator); here the
planner decides exactly as the operator calls it, and `loop.translate` turns the plan
into the same actions the operator carries out: Deployment replicas (only for live,
owned pools), Envoy routes and per-pool admission caps. `command_from_actions` maps
those onto the simulated fleet, nothing else.

`isolated` is the ablation: the same planner on the same tiers with borrow and lend off,
so every difference between the two is what spillover buys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from tierscale import records
from tierscale.domain.observations import Observations
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.loop import naming, translate
from tierscale.loop.actions import Actions
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
        name: str | None = None,
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
        self._name = name or ("tierscale" if spillover else "isolated")
        self.last_record: records.DecisionRecord | None = None
        """Everything the last decision read and returned (`tierscale replay` takes it)."""

    @property
    def name(self) -> str:
        return self._name

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        before = self._state
        result = planner.plan(
            tiers=self._tiers,
            observations=observations,
            model=self._models,
            now_s=now_s,
            state=before,
            budget=self._budget,
            config=self._config,
        )
        self._state = result.state
        self.last_record = records.DecisionRecord(
            record_id=f"{self._name}@{now_s:g}",
            model_group=",".join(sorted({t.model for t in self._tiers})),
            now_s=now_s,
            tiers=self._tiers,
            observations=observations,
            models=self._models,
            config=self._config or planner.PlannerConfig(),
            budget=self._budget,
            conflicts={},
            invalid={},
            state_in=before,
            plan=result,
        )
        acts = translate.actions(
            tiers=self._tiers,
            plan=result,
            observations=observations,
            now_s=now_s,
            previous=translate.Previous(
                decisions=before.last_decisions if before is not None else {}
            ),
        )
        return command_from_actions(self._tiers, acts)


def command_from_actions(tiers: Sequence[Tier], actions: Actions) -> FleetCommand:
    """The operator's actions on the simulated fleet, whose pools are keyed by owner tier."""
    owner_by_pool: dict[str, str] = {}
    for tier in tiers:
        owner_by_pool.setdefault(naming.pool_key(tier), tier.key)
    return FleetCommand(
        desired_replicas_by_pool={owner_by_pool[s.pool_key]: s.replicas for s in actions.scale},
        weights_by_tier={
            route.tier_key: {
                owner_by_pool[pool]: share for pool, share in route.weights_by_pool.items()
            }
            for route in actions.routing.routes
        },
        max_concurrent_by_pool={
            owner_by_pool[pool]: cap.max_requests
            for pool, cap in actions.routing.caps_by_pool.items()
        },
    )
