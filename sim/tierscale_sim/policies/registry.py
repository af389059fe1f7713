"""Every policy a scenario may name, in one table: name -> how to build it.

Adding a baseline is one module under `policies/` and one row here; the runner, the
scenario schema (`policies:`) and `tierscale bench --policies` all read their names from
this table, so none of them needs an edit. A factory gets a `PolicyContext` (everything a
scenario run knows before the first control tick) and returns a fresh `Policy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy.planner import PlannerConfig
from tierscale_predictor import latency
from tierscale_predictor.profiles import StepProfile
from tierscale_sim.commands import Policy
from tierscale_sim.policies import dynamo
from tierscale_sim.policies.hpa import HpaPolicy, KedaPolicy
from tierscale_sim.policies.oracle import OraclePolicy
from tierscale_sim.policies.planner_policy import PlannerPolicy
from tierscale_sim.policies.polyserve import PolyServePolicy
from tierscale_sim.policies.saber import SaberPolicy
from tierscale_sim.policies.static import StaticPolicy
from tierscale_sim.workloads import Workload


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What a policy may be built from: the scenario's view of one (seed, load) run."""

    tiers: tuple[Tier, ...]
    """The tiers as their SLOTiers declare them (what a policy in a cluster would read)."""
    profiles_by_model: Mapping[str, StepProfile]
    budget_gpus: int | None
    control_interval_s: float
    workload: Workload
    """The run's requests; only hindsight baselines (the oracle) may look at them."""
    initial_replicas_by_pool: Mapping[str, int]
    e2e_slo_s_by_tier: Mapping[str, float]
    seed: int
    capacity_rps_by_tier: Callable[[], Mapping[str, float]]
    """Engine-validated capacity of one replica per tier; probed on first call (costly)."""
    planner_config: PlannerConfig | None = None
    """Changes the planner of `tierscale` / `isolated` (ablations only)."""


PolicyFactory = Callable[[PolicyContext], Policy]


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    build: PolicyFactory
    """One closed-loop run of the policy."""
    hindsight: bool = False
    """The runner chooses this baseline's fleet or settings by searching over simulated
    runs of `build`-like policies (`static`: fixed fleets, `oracle`: headroom factors,
    `hpa-tuned`/`keda-tuned`: per-tier thresholds) instead of running `build` once."""


def _planner(spillover: bool, name: str | None = None) -> PolicyFactory:
    def build(ctx: PolicyContext) -> Policy:
        models = {
            model: latency.LatencyModel.from_profile(profile)
            for model, profile in ctx.profiles_by_model.items()
        }
        budget = None if ctx.budget_gpus is None else GpuBudget(total_gpus=ctx.budget_gpus)
        return PlannerPolicy(
            ctx.tiers, models, budget, spillover=spillover, config=ctx.planner_config, name=name
        )

    return build


def _engine_capacity(ctx: PolicyContext) -> Policy:
    """`isolated` told the engine's own capacity per replica of each tier's pool (the probe
    that sizes `static` and `oracle`) instead of its model's: a diagnostic of what the
    control loop spends when the capacity model is exact, not a policy anyone can deploy
    (the probe replays the scenario's requests on the true engine)."""
    given = {key: rps for key, rps in ctx.capacity_rps_by_tier().items() if rps > 0.0}
    config = replace(ctx.planner_config or PlannerConfig(), own_capacity_rps_by_tier=given)
    return _planner(spillover=False, name="engine-capacity")(replace(ctx, planner_config=config))


def _polyserve(ctx: PolicyContext) -> Policy:
    return PolyServePolicy(ctx.tiers, {t.key: ctx.profiles_by_model[t.model] for t in ctx.tiers})


def _saber(ctx: PolicyContext) -> Policy:
    # SABER runs one pool: the first tier's model serves every task type.
    profile = ctx.profiles_by_model[ctx.tiers[0].model]
    rng = np.random.default_rng([ctx.seed, 11])
    return SaberPolicy(ctx.tiers, profile, ctx.e2e_slo_s_by_tier, rng)


def _dynamo(ctx: PolicyContext) -> Policy:
    interpolators = {
        t.key: dynamo.profile_tier(
            ctx.profiles_by_model[t.model], t.pool.max_num_seqs, t.pool.max_num_batched_tokens
        )
        for t in ctx.tiers
    }
    return dynamo.DynamoPolicy(
        ctx.tiers, interpolators, adjustment_interval_s=max(60.0, ctx.control_interval_s)
    )


def _oracle(ctx: PolicyContext) -> Policy:
    return OraclePolicy(
        ctx.tiers,
        ctx.workload,
        ctx.capacity_rps_by_tier(),
        ctx.control_interval_s,
        ctx.budget_gpus,
    )


POLICIES: Final[Mapping[str, PolicyEntry]] = {
    "tierscale": PolicyEntry(_planner(spillover=True)),
    "isolated": PolicyEntry(_planner(spillover=False)),
    "engine-capacity": PolicyEntry(_engine_capacity),
    "hpa": PolicyEntry(lambda ctx: HpaPolicy(ctx.tiers)),
    "keda": PolicyEntry(lambda ctx: KedaPolicy(ctx.tiers)),
    "hpa-tuned": PolicyEntry(lambda ctx: HpaPolicy(ctx.tiers, name="hpa-tuned"), hindsight=True),
    "keda-tuned": PolicyEntry(lambda ctx: KedaPolicy(ctx.tiers, name="keda-tuned"), hindsight=True),
    "dynamo": PolicyEntry(_dynamo),
    "static": PolicyEntry(lambda ctx: StaticPolicy(ctx.initial_replicas_by_pool), hindsight=True),
    "polyserve": PolicyEntry(_polyserve),
    "saber": PolicyEntry(_saber),
    "oracle": PolicyEntry(_oracle, hindsight=True),
}
"""Order is the order of `--help` and of the unknown-policy error messages."""

POLICY_NAMES: Final = tuple(POLICIES)
