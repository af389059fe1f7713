"""A pool lends no more than it has been seen to carry within its SLO (`lending.py`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.policy.builders import make_tier, observations, observe
from tests.policy.test_planner_explanations import Inputs, check_plan
from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import allocation, lending, planner
from tierscale.policy.config import PlannerConfig
from tierscale_predictor import latency

CFG = PlannerConfig()
LENDER = make_tier("standard", 0.3, 0.03, priority=100, min_replicas=1)
BORROWER = make_tier("batch", 5.0, 0.1, priority=0, lend=False)


def test_a_window_within_the_slo_proves_its_load_and_a_breach_caps_it() -> None:
    assert lending.proven_after(None, 15.0, 4.0, False, True, CFG) == 4.0
    assert lending.proven_after(6.0, 0.0, 4.0, False, True, CFG) == 6.0  # the most seen stays
    assert lending.proven_after(3.0, 0.0, 4.0, False, True, CFG) == 4.0
    # Met, but with p99 TTFT above half the SLO: near its limit, as a breach: 4.0 / 1.5.
    assert lending.proven_after(3.0, 0.0, 4.0, False, False, CFG) == pytest.approx(4.0 / 1.5)
    assert lending.proven_after(None, 0.0, 4.0, False, False, CFG) == pytest.approx(4.0 / 1.5)
    # A breach caps the known load at its load over the factor: 4.5 / 1.5.
    assert lending.proven_after(6.0, 0.0, 4.5, True, True, CFG) == pytest.approx(3.0)
    assert lending.proven_after(None, 0.0, 4.5, True, False, CFG) == pytest.approx(3.0)
    # Nothing judged, or a window of two pool sizes: only the decay.
    assert lending.proven_after(None, 15.0, 4.0, None, True, CFG) is None
    half_life_s = CFG.breach_memory_half_life_s
    assert half_life_s is not None
    assert lending.proven_after(6.0, half_life_s, None, False, True, CFG) == pytest.approx(3.0)


def test_the_bound_is_the_factor_times_the_proven_load_less_the_own_rate() -> None:
    assert lending.borrowed_bound_rps(None, 2, 1.0, CFG) is None  # never judged: the model
    assert lending.borrowed_bound_rps(4.0, 2, 5.0, CFG) == pytest.approx(1.5 * 4.0 * 2 - 5.0)
    assert lending.borrowed_bound_rps(4.0, 1, 9.8, CFG) == 0.0
    off = PlannerConfig(lend_beyond_proven=None)
    assert lending.borrowed_bound_rps(4.0, 1, 9.8, off) is None


def test_the_allocation_puts_no_more_borrowed_load_on_a_pool_than_its_bound() -> None:
    pools = [allocation.PoolSpec("a", 1, 1, 1), allocation.PoolSpec("b", 1, 0, 0)]
    demands = [
        allocation.DemandSpec("a", 2.0, 100, {"a": 10.0}),
        allocation.DemandSpec("b", 6.0, 0, {"a": 10.0, "b": 5.0}),
    ]
    free = allocation.solve(allocation.AllocationProblem(pools, demands))
    assert free.flow_rps_by_demand_pool[("b", "a")] == pytest.approx(6.0)
    bounded = allocation.solve(
        allocation.AllocationProblem(pools, demands, max_borrowed_rps_by_pool={"a": 1.5})
    )
    assert bounded.flow_rps_by_demand_pool[("b", "a")] == pytest.approx(1.5)
    assert bounded.unserved_rps_by_demand["b"] == pytest.approx(4.5)
    # The pool's own demand is not what the bound limits.
    assert bounded.flow_rps_by_demand_pool[("a", "a")] == pytest.approx(2.0)


def _window(
    tier: Tier,
    rate_rps: float,
    now_s: float,
    current: int,
    pool_rps: float | None = None,
    ttft_frac: float = 0.2,
) -> TierObservation:
    """A window that met the SLO, its p99 TTFT at `ttft_frac` of it."""
    return replace(
        observe(tier, rate_rps, now_s=now_s, current=current, ttft_s=ttft_frac * tier.slo.ttft_s),
        attainment_frac=1.0,
        window_requests=rate_rps * 60.0,
        pool_rate_rps=pool_rps,
    )


def _plan_at(
    h100: latency.LatencyModel,
    state: PlannerState,
    now_s: float,
    lender_rps: float,
    lender_pool_rps: float | None = None,
    lender_ttft_frac: float = 0.2,
) -> tuple[planner.Plan, Inputs]:
    # One GPU, the lender's: the borrower is served only on the lender's spare capacity.
    seen = observations(
        _window(LENDER, lender_rps, now_s, 1, lender_pool_rps, lender_ttft_frac),
        _window(BORROWER, 12.0, now_s, current=0),
    )
    budget = GpuBudget(total_gpus=1)
    result = planner.plan(
        tiers=[LENDER, BORROWER],
        observations=seen,
        model=h100,
        now_s=now_s,
        state=state,
        budget=budget,
    )
    seqs = {LENDER.key: h100.max_num_seqs, BORROWER.key: h100.max_num_seqs}
    return result, Inputs([LENDER, BORROWER], seen, budget, state, seqs)


def test_a_lender_whose_own_load_surged_lends_nothing(h100: latency.LatencyModel) -> None:
    # Found by the generalisation report (gen-s20261130-008, a flash crowd): a pool seen
    # carrying ~3 req/s per replica took 7.8 req/s of a looser tier on top of its own,
    # which had surged to 7.2 (p99 TTFT 4.6 s of a 5 s SLO), because its model said one
    # replica carries 17.8; the engine could not, and every tier ended below what it got
    # without spillover. Fails on the previous planner, which lent what the model allowed.
    state = PlannerState(proven_rps_by_tier={LENDER.key: 3.0})
    result, inputs = _plan_at(h100, state, 1000.0, lender_rps=7.2, lender_ttft_frac=0.92)
    check_plan(result, inputs)
    assert result.decisions[BORROWER.key].weights_by_pool.get(LENDER.key, 0.0) == 0.0
    assert result.decisions[LENDER.key].planned_spill_in_rps == 0.0
    # Without a record (a fresh planner), the window near its limit is the record.
    fresh, inputs = _plan_at(h100, PlannerState(), 1000.0, lender_rps=7.2, lender_ttft_frac=0.92)
    check_plan(fresh, inputs)
    assert fresh.decisions[BORROWER.key].weights_by_pool.get(LENDER.key, 0.0) == 0.0
    # Never judged (no latency, no attainment yet): its model alone bounds it.
    unjudged = observations(observe(LENDER, 7.2, current=1), observe(BORROWER, 12.0))
    plan = planner.plan(
        tiers=[LENDER, BORROWER],
        observations=unjudged,
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=1),
    )
    assert plan.decisions[BORROWER.key].weights_by_pool.get(LENDER.key, 0.0) > 0.0


def test_lending_grows_by_the_factor_as_it_is_shown_safe(h100: latency.LatencyModel) -> None:
    # Each window shows the pool carrying its own 2 req/s and what it borrowed, within
    # its SLO: that load is proven, and the next decision may lend 1.5x it less 2.
    state = PlannerState(proven_rps_by_tier={LENDER.key: 2.0})
    lent = [0.0]
    now_s = 1000.0
    for _ in range(4):
        result, inputs = _plan_at(h100, state, now_s, 2.0, lender_pool_rps=2.0 + lent[-1])
        check_plan(result, inputs)
        decision = result.decisions[LENDER.key]
        lent.append(decision.spill_in_rps)
        assert "it lends at most" in decision.message
        state, now_s = result.state, now_s + 60.0
    assert lent[1] == pytest.approx(1.5 * 2.0 - 2.0)
    assert lent[2] == pytest.approx(1.5 * 3.0 - 2.0)
    assert lent[1] < lent[2] < lent[3] < lent[4]
