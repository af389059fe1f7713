"""PolyServe's admission test and SABER's feasibility rule, each on its own."""

from __future__ import annotations

import numpy as np
import pytest
from tierscale_sim.fleet import Fleet, FleetConfig
from tierscale_sim.policies.polyserve import PolyServePolicy
from tierscale_sim.policies.saber import SaberPolicy, measure_speed_curve
from tierscale_sim.workloads import Workload

from tests.sim.sim_fakes import FixedLatencyBackend
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier
from tierscale_predictor.profiles import load_profile


def _tier(name: str, tpot_s: float) -> Tier:
    return Tier(
        name=name,
        namespace="t",
        model="m",
        slo=Slo(ttft_s=1.0, tpot_s=tpot_s),
        pool=Pool(deployment=name, min_replicas=1, max_replicas=4),
        scaling=Scaling(cold_start_s=0.0),
    )


TIERS = (_tier("tight", 0.02), _tier("loose", 0.1))


def _workload(n: int, tier: int) -> Workload:
    return Workload(
        tier_keys=tuple(t.key for t in TIERS),
        arrival_s=np.linspace(0.0, 1.0, n),
        prompt_tokens=np.full(n, 1000, dtype=np.int64),
        output_tokens=np.full(n, 200, dtype=np.int64),
        tier_index=np.full(n, tier, dtype=np.int64),
        duration_s=1.0,
    )


def _fleet(policy: PolyServePolicy, workload: Workload, budget: int | None = 2) -> Fleet:
    return Fleet(
        TIERS,
        workload,
        policy,
        lambda pool: FixedLatencyBackend(),
        FleetConfig(initial_replicas_by_pool={t.key: 1 for t in TIERS}, budget_gpus=budget),
        np.random.default_rng(0),
        policy,
    )


def _load(fleet: Fleet, pool: int, running: int) -> None:
    backend = fleet.ready_replicas(pool)[0].backend
    assert isinstance(backend, FixedLatencyBackend)
    backend._active = [(1e9, 10_000 + i, 0.0, 1200) for i in range(running)]
    fleet.ready_replicas(pool)[0].inflight = running


def test_polyserve_admission_holds_the_host_tier_tpot() -> None:
    h100 = load_profile("llama-3.1-8b-h100")
    policy = PolyServePolicy(TIERS, {t.key: h100 for t in TIERS})
    fleet = _fleet(policy, _workload(10, tier=1))
    policy._cols(fleet)
    rep = fleet.ready_replicas(1)[0]
    assert policy._passes(fleet, rep, 0, 0.0)
    _load(fleet, 1, 3000)  # a batch whose step time is far above 80% of 100 ms
    assert not policy._passes(fleet, rep, 0, 0.0)


def test_polyserve_promotes_to_a_tighter_tier_when_its_own_is_full() -> None:
    h100 = load_profile("llama-3.1-8b-h100")
    policy = PolyServePolicy(TIERS, {t.key: h100 for t in TIERS})
    fleet = _fleet(policy, _workload(1, tier=1), budget=2)
    _load(fleet, 1, 3000)
    policy.route(fleet, 0, 0.0)
    assert policy.pending() == 0
    assert fleet.ready_replicas(0)[0].inflight == 1  # served by the tight tier's replica


def test_polyserve_queues_when_nothing_passes_and_no_capacity_can_be_claimed() -> None:
    h100 = load_profile("llama-3.1-8b-h100")
    policy = PolyServePolicy(TIERS, {t.key: h100 for t in TIERS})
    fleet = _fleet(policy, _workload(1, tier=1), budget=2)
    _load(fleet, 0, 3000)
    _load(fleet, 1, 3000)
    policy.route(fleet, 0, 0.0)
    assert policy.pending() == 1


def test_saber_speed_curve_matches_the_papers_measurements() -> None:
    loads, speeds = measure_speed_curve(load_profile("qwen2.5-coder-3b-a100"))
    speed = dict(zip(loads, speeds, strict=True))
    # SABER's released data: ~95 tok/s at load 1, 63 at 20, 45 at 60.
    assert speed[1.0] == pytest.approx(95, rel=0.08)
    assert speed[20.0] == pytest.approx(63, rel=0.08)
    assert speed[60.0] == pytest.approx(45, rel=0.08)
    assert all(a > b for a, b in zip(speeds, speeds[1:], strict=False))


def test_saber_admits_only_what_keeps_every_request_feasible() -> None:
    qwen = load_profile("qwen2.5-coder-3b-a100")
    policy = SaberPolicy(TIERS, qwen, {TIERS[1].key: 12.0}, np.random.default_rng(0))
    h100 = load_profile("llama-3.1-8b-h100")
    fleet = _fleet(PolyServePolicy(TIERS, {t.key: h100 for t in TIERS}), _workload(5, tier=1))
    assert policy._feasible(fleet, required_tps=50.0, now_s=0.0)  # 95 tok/s alone
    assert not policy._feasible(fleet, required_tps=120.0, now_s=0.0)
    policy._running = {i: 0.0 for i in range(60)}  # 60 running: ~45 tok/s each
    assert not policy._feasible(fleet, required_tps=50.0, now_s=0.0)
