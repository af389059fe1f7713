"""The tierscale policy in the simulator: the production loop's decide and act, end to end.

A short run of the real planner on engine replicas, asserting invariants (never speed or
scores): replicas inside min/max and the GPU budget, the plan's admission caps reaching the
simulated circuit breakers, observations that come only from the metric inputs a cluster
gives, and decision records that replay identically after a JSON round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from tierscale_sim.commands import FleetCommand
from tierscale_sim.fleet import Fleet, FleetConfig
from tierscale_sim.policies.planner_policy import PlannerPolicy
from tierscale_sim.replica_port import EngineBackend
from tierscale_sim.workloads import MixPhase, RateProfile, TokenSpec, synthetic_workload

from tierscale import records
from tierscale.domain.metrics import MetricInputs
from tierscale.domain.observations import Observations
from tierscale.domain.plans import TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import GpuBudget, Pool, Scaling, Slo, Tier
from tierscale.loop import observe, translate
from tierscale.policy import planner
from tierscale_predictor import latency, profiles

PROFILE = profiles.load_profile("llama-3.1-8b-h100")
BUDGET_GPUS = 7


def _tier(name: str, ttft_s: float, tpot_s: float, priority: int) -> Tier:
    return Tier(
        name=name,
        namespace="llm",
        model="llama",
        slo=Slo(ttft_s=ttft_s, tpot_s=tpot_s),
        pool=Pool(deployment=f"vllm-{name}", min_replicas=1, max_replicas=5),
        priority=priority,
        scaling=Scaling(cold_start_s=30.0, scale_down_stabilization_s=60.0),
    )


TIERS = (
    _tier("ide", 0.5, 0.04, priority=30),
    _tier("chat", 1.0, 0.08, priority=20),
    _tier("batch", 10.0, 0.2, priority=10),
)


@dataclass
class Recorder:
    """Wraps the tierscale policy; keeps what the fleet measured, saw and was told per tick."""

    policy: PlannerPolicy
    fleet: Fleet | None = None
    ticks: list[tuple[MetricInputs, Observations, FleetCommand]] = field(default_factory=list)
    records: list[records.DecisionRecord] = field(default_factory=list)
    breakers: list[dict[str, int]] = field(default_factory=list)

    name = "recorded"
    instant_scaling = False

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        assert self.fleet is not None
        if self.ticks:  # the fleet applied the previous command before this tick
            self.breakers.append(self.fleet.circuit_breakers)
        command = self.policy.decide(now_s, observations)
        self.ticks.append((self.fleet.last_metric_inputs, observations, command))
        assert self.policy.last_record is not None
        self.records.append(self.policy.last_record)
        return command


def _run() -> Recorder:
    keys = [t.key for t in TIERS]
    duration_s = 600.0
    workload = synthetic_workload(
        keys,
        RateProfile.step([(0.0, 4.0), (200.0, 24.0), (400.0, 6.0)], duration_s),
        duration_s,
        [MixPhase(0.0, {keys[0]: 0.3, keys[1]: 0.4, keys[2]: 0.3})],
        {k: TokenSpec(800, 150, "lognormal", 1.0) for k in keys},
        np.random.default_rng(7),
    )
    model = latency.LatencyModel.from_profile(PROFILE)
    # Caps on every decision (not only where one protects a pool), so that every tick
    # exercises the way from the plan's caps to the simulated circuit breakers.
    always = planner.PlannerConfig(admission_caps="always")
    recorder = Recorder(
        PlannerPolicy(TIERS, {"llama": model}, GpuBudget(total_gpus=BUDGET_GPUS), config=always)
    )
    fleet = Fleet(
        TIERS,
        workload,
        recorder,
        lambda pool: EngineBackend(PROFILE),
        FleetConfig(
            control_interval_s=15.0,
            metrics_window_s=60.0,
            budget_gpus=BUDGET_GPUS,
            initial_replicas_by_pool={t.key: 1 for t in TIERS},
        ),
        np.random.default_rng(7),
    )
    recorder.fleet = fleet
    run = fleet.run()
    assert run.workload.num_requests > 3000
    return recorder


RUN = _run()


def test_replicas_stay_inside_min_max_and_the_gpu_budget() -> None:
    assert len(RUN.ticks) == 40  # every 15 s from 15 s to 600 s
    for _, _, command in RUN.ticks:
        total = 0
        for tier in TIERS:
            replicas = command.desired_replicas_by_pool.get(tier.key)
            if replicas is None:
                continue
            assert tier.pool.min_replicas <= replicas <= tier.pool.max_replicas
            total += replicas * tier.pool.gpus_per_replica
        assert total <= BUDGET_GPUS


def test_the_plans_admission_caps_reach_the_simulated_circuit_breakers() -> None:
    capped = 0
    for (_, _, command), breakers in zip(RUN.ticks, RUN.breakers, strict=False):
        assert breakers == dict(command.max_concurrent_by_pool)
        capped += len(breakers)
    assert capped > 0  # the tierscale policy sets caps: the comparison above is not vacuous


def test_observations_come_only_from_metric_inputs_a_cluster_gives() -> None:
    for inputs, observations, _ in RUN.ticks:
        assert observations == observe.observations(TIERS, inputs)
    seen = [o for _, obs, _ in RUN.ticks for o in obs.by_tier.values()]
    # latency only as vLLM's histograms give it: every quantile lies on the interpolation
    # between bucket bounds, so at least some are not exact request latencies
    assert any(o.ttft_s is not None for o in seen)
    # the window is the scenario's, shortened only before the first minute has passed
    assert all(o.window_s == min(60.0, o.sampled_at_s) for o in seen)


def test_every_decision_record_replays_identically_after_a_json_round_trip() -> None:
    assert RUN.records
    for record in RUN.records[::4]:
        loaded = records.loads(records.DecisionRecord, records.dumps(record))
        assert records.same_plan(records.replay(loaded), record.plan)


def test_a_plan_predicting_unbounded_latency_sets_no_admission_cap() -> None:
    """Found by the generalisation benchmark: an overloaded pool's predicted TTFT is
    infinite, and Little's law then gives no finite cap (it used to raise)."""
    decision = TierDecision(
        tier_key="default/a",
        desired_replicas=3,
        weights_by_pool={"default/a": 1.0},
        reason=Reason.FORECAST_UP,
        message="",
        predicted_ttft_s=math.inf,
        predicted_tpot_s=0.05,
        admission_cap_rps=12.0,
    )
    assert translate.admission_cap(decision, None, 0.5) is None
    finite = replace(decision, predicted_ttft_s=0.5)
    assert translate.admission_cap(finite, None, 0.5) is not None
