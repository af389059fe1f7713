"""Fleet bookkeeping invariants, checked with a replica whose latencies are arithmetic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tierscale_sim.commands import FleetCommand
from tierscale_sim.fleet import Fleet, FleetConfig
from tierscale_sim.policies.static import StaticPolicy
from tierscale_sim.scoring import score_run
from tierscale_sim.workloads import MixPhase, RateProfile, TokenSpec, synthetic_workload

from tests.sim.sim_fakes import FixedLatencyBackend
from tierscale.domain.observations import Observations
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier


def _tier(name: str, ttft_s: float, tpot_s: float, cold_start_s: float = 60.0) -> Tier:
    return Tier(
        name=name,
        namespace="default",
        model="m",
        slo=Slo(ttft_s=ttft_s, tpot_s=tpot_s),
        pool=Pool(deployment=name, min_replicas=1, max_replicas=8),
        scaling=Scaling(cold_start_s=cold_start_s),
    )


TIERS = (_tier("fast", 0.5, 0.05), _tier("slow", 2.0, 0.2))


def _workload(seed: int, rate_rps: float = 5.0, duration_s: float = 300.0):
    keys = [t.key for t in TIERS]
    return synthetic_workload(
        keys,
        RateProfile.constant(rate_rps, duration_s),
        duration_s,
        [MixPhase(0.0, {keys[0]: 0.4, keys[1]: 0.6})],
        {k: TokenSpec(200, 50, "exponential") for k in keys},
        np.random.default_rng(seed),
    )


class StepPolicy:
    """Scales pools up at 60 s and down at 180 s, to exercise cold start and draining."""

    name = "step"
    instant_scaling = False

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        n = 3 if 60 <= now_s < 180 else 1
        return FleetCommand(
            desired_replicas_by_pool={t.key: n for t in TIERS},
            weights_by_tier={TIERS[1].key: {TIERS[0].key: 0.5, TIERS[1].key: 0.5}},
        )


def _run(policy, seed: int = 1, initial: int = 1, budget: int | None = None):
    cfg = FleetConfig(initial_replicas_by_pool={t.key: initial for t in TIERS}, budget_gpus=budget)
    fleet = Fleet(
        TIERS,
        _workload(seed),
        policy,
        lambda pool: FixedLatencyBackend(),
        cfg,
        np.random.default_rng(seed),
    )
    return fleet.run()


def test_every_request_finishes_or_is_counted_rejected() -> None:
    run = _run(StepPolicy())
    o = run.outcomes
    finished = ~np.isnan(o.e2e_s)
    assert run.workload.num_requests > 1000
    assert np.all(finished ^ o.rejected)
    assert not o.rejected.any()


def test_requests_without_ready_replicas_are_rejected_not_lost() -> None:
    run = _run(StaticPolicy({t.key: 0 for t in TIERS}), initial=0)
    assert run.outcomes.rejected.all()
    score = score_run(run, TIERS, "static", 1)
    assert score.attainment_frac == 0.0
    assert score.gpu_hours == 0.0


def test_same_seed_same_result_and_other_seed_differs() -> None:
    a, b, c = _run(StepPolicy(), seed=3), _run(StepPolicy(), seed=3), _run(StepPolicy(), seed=4)
    np.testing.assert_array_equal(a.outcomes.e2e_s, b.outcomes.e2e_s)
    np.testing.assert_array_equal(a.outcomes.served_pool, b.outcomes.served_pool)
    assert a.gpu_hours == b.gpu_hours
    assert a.workload.num_requests != c.workload.num_requests


def test_gpu_hours_count_cold_start_and_drain() -> None:
    # 1 replica per pool all along (600 s of 2 pools) plus 2 extra per pool from 60 s to
    # 180 s (requested at 60 s, ready at 120 s, draining from 180 s until idle).
    run = _run(StepPolicy())
    expected_floor_h = (2 * 300 + 2 * 2 * 120) / 3600
    assert run.gpu_hours == pytest.approx(expected_floor_h, abs=4 * 2 * 2 / 3600)
    assert run.replicas_started == 2 + 4
    assert run.scale_ups == 2
    assert run.scale_downs == 2


def test_replicas_serve_only_after_cold_start() -> None:
    run = _run(StepPolicy())
    at_75 = next(r for r in run.timeline if r.t_s == 75.0)
    at_135 = next(r for r in run.timeline if r.t_s == 135.0)
    assert at_75.ready_by_pool == {t.key: 1 for t in TIERS}
    assert at_75.current_by_pool == {t.key: 3 for t in TIERS}
    assert at_135.ready_by_pool == {t.key: 3 for t in TIERS}


def test_spillover_weights_split_a_tier_between_pools() -> None:
    run = _run(StepPolicy())
    slow = run.workload.tier_index == 1
    late = run.workload.arrival_s > 20
    shares = np.bincount(run.outcomes.served_pool[slow & late], minlength=2)
    assert abs(shares[0] - shares[1]) <= 2


def test_gpu_budget_caps_replicas_in_priority_order() -> None:
    run = _run(StepPolicy(), budget=4)
    assert max(r.gpus_in_use for r in run.timeline) <= 4


def test_fixed_latencies_are_scored_exactly() -> None:
    run = _run(StaticPolicy({t.key: 2 for t in TIERS}))
    score = score_run(run, TIERS, "static", 1)
    assert score.by_tier[TIERS[0].key].ttft_p99_s == pytest.approx(0.1)
    assert score.attainment_frac == 1.0
    served = ~run.outcomes.rejected
    expected = 0.1 + (run.workload.output_tokens[served] - 1) * 0.01
    np.testing.assert_allclose(run.outcomes.e2e_s[served], expected, atol=1e-9)


def test_engine_backed_fleet_keeps_kv_within_capacity_and_serves_everything() -> None:
    from tierscale_sim.replica_port import EngineBackend

    from tierscale_predictor.profiles import load_profile

    profile = load_profile("llama-3.1-8b-h100")
    keys = [t.key for t in TIERS]
    workload = synthetic_workload(
        keys,
        RateProfile.constant(30.0, 120.0),
        120.0,
        [MixPhase(0.0, {keys[0]: 0.5, keys[1]: 0.5})],
        {k: TokenSpec(1500, 200, "lognormal", 1.0) for k in keys},
        np.random.default_rng(5),
    )
    fleet = Fleet(
        TIERS,
        workload,
        StaticPolicy({k: 1 for k in keys}),
        lambda pool: EngineBackend(profile),
        FleetConfig(initial_replicas_by_pool={k: 1 for k in keys}),
        np.random.default_rng(5),
    )
    run = fleet.run()
    assert np.all(~np.isnan(run.outcomes.e2e_s) ^ run.outcomes.rejected)
    assert 0.0 < run.max_kv_usage_frac <= 1.0
    assert np.nanmin(run.outcomes.ttft_s) > 0.0
    assert np.all(run.outcomes.e2e_s >= run.outcomes.ttft_s)


def test_budget_is_granted_by_priority_and_preempts_lower_tiers() -> None:
    high = replace(TIERS[0], priority=10)
    tiers = (high, TIERS[1])

    class Greedy:
        name = "greedy"
        instant_scaling = True

        def decide(self, now_s: float, observations: Observations) -> FleetCommand:
            return FleetCommand(desired_replicas_by_pool={t.key: 3 for t in tiers})

    fleet = Fleet(
        tiers,
        _workload(2),
        Greedy(),
        lambda pool: FixedLatencyBackend(),
        FleetConfig(initial_replicas_by_pool={t.key: 2 for t in tiers}, budget_gpus=4),
        np.random.default_rng(2),
    )
    run = fleet.run()
    # First tick: the low tier is drained to free a GPU (it holds it until idle), so the
    # high tier gets its third replica at the next tick.
    assert run.timeline[0].current_by_pool == {high.key: 2, TIERS[1].key: 1}
    assert run.timeline[1].current_by_pool == {high.key: 3, TIERS[1].key: 1}
    assert max(r.gpus_in_use for r in run.timeline) <= 4


def test_circuit_breaker_overflows_to_the_next_pool_then_rejects() -> None:
    class Capped:
        name = "capped"
        instant_scaling = False

        def __init__(self, spill: bool) -> None:
            self.spill = spill

        def decide(self, now_s: float, observations: Observations) -> FleetCommand:
            weights = {TIERS[1].key: {TIERS[1].key: 1.0}}
            if self.spill:
                weights = {TIERS[1].key: {TIERS[1].key: 0.99, TIERS[0].key: 0.01}}
            return FleetCommand(
                desired_replicas_by_pool={t.key: 1 for t in TIERS},
                weights_by_tier=weights,
                max_concurrent_by_pool={TIERS[1].key: 3},
            )

    def run(spill: bool):
        fleet = Fleet(
            TIERS,
            _workload(6, rate_rps=20.0),
            Capped(spill),
            lambda pool: FixedLatencyBackend(ttft_s=0.5, tpot_s=0.05),
            FleetConfig(initial_replicas_by_pool={t.key: 1 for t in TIERS}),
            np.random.default_rng(6),
        )
        return fleet.run()

    alone, spilled = run(False), run(True)
    late = alone.workload.arrival_s > 15.0  # after the first tick set the breaker
    slow = alone.workload.tier_index == 1
    assert alone.outcomes.rejected[late & slow].any()
    assert not alone.outcomes.rejected[~slow].any()
    assert spilled.outcomes.rejected[late & slow].sum() < alone.outcomes.rejected[late & slow].sum()


def test_requests_before_the_warmup_are_simulated_but_not_scored() -> None:
    # No replica is Ready before 60 s (cold start), so early requests are rejected.
    run = _run(StepPolicy(), initial=0)
    arrived_late = run.workload.arrival_s >= 120.0
    whole = score_run(run, TIERS, "step", 1)
    warm = score_run(run, TIERS, "step", 1, warmup_s=120.0)
    assert whole.rejected > 0
    assert warm.requests == int(arrived_late.sum())
    assert warm.rejected == int(run.outcomes.rejected[arrived_late].sum())
    assert warm.offered_rps == pytest.approx(warm.requests / (run.workload.duration_s - 120.0))
    assert warm.gpu_hours == whole.gpu_hours


class CappedPolicy:
    """Asks for one replica per pool and an in-flight cap per pool."""

    name = "capped"
    instant_scaling = False

    def __init__(self, caps: dict[str, int]) -> None:
        self.caps = caps

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        return FleetCommand(
            desired_replicas_by_pool={t.key: 1 for t in TIERS},
            max_concurrent_by_pool=self.caps,
        )


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ({TIERS[0].key: 3, TIERS[1].key: 4}, {TIERS[0].key: 7}),
        ({TIERS[0].key: 3}, {}),  # a tier without a cap leaves the shared pool unlimited
    ],
)
def test_one_shared_pool_takes_the_sum_of_the_tiers_caps(
    caps: dict[str, int], expected: dict[str, int]
) -> None:
    """All tiers' traffic reaches the first pool (SABER's one replica): the limits the
    policy sets for each tier's pool add up there."""
    cfg = FleetConfig(
        initial_replicas_by_pool={TIERS[0].key: 1}, single_pool=True, control_interval_s=15.0
    )
    fleet = Fleet(
        TIERS,
        _workload(3, duration_s=30.0),
        CappedPolicy(caps),
        lambda pool: FixedLatencyBackend(),
        cfg,
        np.random.default_rng(3),
    )
    fleet.run()
    assert fleet.circuit_breakers == expected


class RecordingStepPolicy(StepPolicy):
    """StepPolicy that keeps what each decision observed."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, Observations]] = []

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        self.seen.append((now_s, observations))
        return super().decide(now_s, observations)


def test_the_newest_ready_time_is_observed_as_the_operator_sees_it() -> None:
    # Scale-up ordered at 60 s with a 60 s cold start: Ready at 120 s. The replicas the
    # run starts with have no ready time, like an operator that starts on a running pool.
    policy = RecordingStepPolicy()
    _run(policy)
    newest = {
        now_s: obs.get(TIERS[0].key).newest_ready_at_s  # type: ignore[union-attr]
        for now_s, obs in policy.seen
    }
    assert all(v is None for t, v in newest.items() if t < 120.0)
    later = [v for t, v in newest.items() if t >= 120.0]
    assert later and all(v == pytest.approx(120.0, abs=1.0) for v in later)


def test_token_histograms_take_the_pools_max_model_len_as_vllm_builds_them() -> None:
    # Prompts cut at 16,384 (a heavy tail stopped by --max-model-len 16384): the pool's
    # length buckets stop at 10,000 as vLLM's do, and the observation reads the p99 up to
    # the limit. The same pool without the flag (Llama-3.1's 131,072-token layout, no
    # limit) interpolates the 10,000-20,000 bucket past every request.
    keys = [t.key for t in TIERS]
    workload = synthetic_workload(
        keys,
        RateProfile.constant(20.0, 240.0),
        240.0,
        [MixPhase(0.0, {keys[0]: 0.5, keys[1]: 0.5})],
        {k: TokenSpec(5221, 50, "exponential", prompt_max=16384) for k in keys},
        np.random.default_rng(3),
    )
    limited = tuple(replace(t, pool=replace(t.pool, max_model_len=16384)) for t in TIERS)
    p99s: dict[bool, list[float]] = {}
    for with_limit, tiers in ((True, limited), (False, TIERS)):
        policy = RecordingStepPolicy()
        cfg = FleetConfig(initial_replicas_by_pool={t.key: 2 for t in tiers})
        Fleet(
            tiers, workload, policy, lambda pool: FixedLatencyBackend(), cfg,
            np.random.default_rng(3),
        ).run()  # fmt: skip
        p99s[with_limit] = [
            p99
            for now_s, obs in policy.seen
            if now_s >= 120.0
            and (o := obs.get(tiers[0].key)) is not None
            and (p99 := o.prompt_tokens_p99) is not None
        ]
    assert p99s[True] and all(12_000.0 < v <= 16_384.0 for v in p99s[True])
    assert p99s[False] and all(v > 16_384.0 for v in p99s[False])
