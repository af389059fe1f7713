"""Planner invariants over random tier sets (hypothesis), on the real H100 latency model."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.policy.builders import make_tier, observations, observe
from tierscale.domain.observations import Observations
from tierscale.domain.tiers import GpuBudget, Slo, Tier
from tierscale.policy import planner
from tierscale_predictor import latency

TTFT_CHOICES_S = (0.3, 0.5, 1.0, 5.0)
TPOT_CHOICES_S = (0.02, 0.03, 0.05, 0.1)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Tier], Observations]:
    count = draw(st.integers(1, 4))
    tiers, seen = [], []
    for i in range(count):
        tier = make_tier(
            f"t{i}",
            draw(st.sampled_from(TTFT_CHOICES_S)),
            draw(st.sampled_from(TPOT_CHOICES_S)),
            draw(st.integers(0, 3)),
            min_replicas=draw(st.integers(0, 1)),
            max_replicas=draw(st.integers(1, 12)),
            borrow=draw(st.booleans()),
            lend=draw(st.booleans()),
        )
        tiers.append(tier)
        seen.append(
            observe(
                tier,
                draw(st.floats(0.0, 30.0)),
                prompt=draw(st.sampled_from((200.0, 1000.0, 2000.0))),
                output=draw(st.sampled_from((30.0, 200.0, 600.0))),
            )
        )
    return tiers, observations(*seen)


def _scaled(obs: Observations, factor: float) -> Observations:
    return Observations(
        {k: replace(o, rate_rps=(o.rate_rps or 0.0) * factor) for k, o in obs.by_tier.items()}
    )


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.floats(1.0, 3.0))
def test_more_demand_never_yields_fewer_gpus(
    h100: latency.LatencyModel, scenario: tuple[list[Tier], Observations], factor: float
) -> None:
    tiers, obs = scenario
    base = planner.plan(tiers=tiers, observations=obs, model=h100, now_s=1000.0)
    more = planner.plan(tiers=tiers, observations=_scaled(obs, factor), model=h100, now_s=1000.0)
    assert more.total_gpus >= base.total_gpus


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.integers(2, 30))
def test_budget_min_and_max_always_hold(
    h100: latency.LatencyModel, scenario: tuple[list[Tier], Observations], budget: int
) -> None:
    tiers, obs = scenario
    if sum(t.pool.min_replicas for t in tiers) > budget:
        return
    result = planner.plan(
        tiers=tiers, observations=obs, model=h100, now_s=1000.0, budget=GpuBudget(total_gpus=budget)
    )
    assert result.total_gpus <= budget
    for tier in tiers:
        d = result.decisions[tier.key]
        assert tier.pool.min_replicas <= d.desired_replicas <= tier.pool.max_replicas


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_traffic_only_goes_to_its_own_or_a_tighter_lending_pool(
    h100: latency.LatencyModel, scenario: tuple[list[Tier], Observations]
) -> None:
    tiers, obs = scenario
    by_key = {t.key: t for t in tiers}
    result = planner.plan(tiers=tiers, observations=obs, model=h100, now_s=1000.0)
    for key, decision in result.decisions.items():
        assert abs(sum(decision.weights_by_pool.values()) - 1.0) < 1e-9
        for pool in decision.weights_by_pool:
            if pool == key:
                continue
            borrower, lender = by_key[key], by_key[pool]
            assert borrower.borrow and lender.lend
            assert lender.slo.at_least_as_tight_as(borrower.slo)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(TTFT_CHOICES_S),
    st.sampled_from(TPOT_CHOICES_S),
    st.floats(0.1, 40.0),
    st.floats(0.3, 1.0),
)
def test_a_tighter_slo_never_yields_fewer_replicas(
    h100: latency.LatencyModel, ttft_s: float, tpot_s: float, rate: float, tighten: float
) -> None:
    loose = make_tier("a", ttft_s, tpot_s, max_replicas=200)
    tight = replace(loose, slo=Slo(ttft_s * tighten, tpot_s * tighten))
    loose_plan = planner.plan(
        tiers=[loose], observations=observations(observe(loose, rate)), model=h100, now_s=1000.0
    )
    tight_plan = planner.plan(
        tiers=[tight], observations=observations(observe(tight, rate)), model=h100, now_s=1000.0
    )
    key = loose.key
    assert (
        tight_plan.decisions[key].desired_replicas >= loose_plan.decisions[key].desired_replicas
        or tight_plan.decisions[key].unserved_rate_rps > 0
    )


@settings(max_examples=30, deadline=None)
@given(scenarios(), st.integers(1, 12))
def test_a_higher_priority_is_never_starved_for_a_lower_one(
    h100: latency.LatencyModel, scenario: tuple[list[Tier], Observations], budget: int
) -> None:
    tiers, obs = scenario
    if sum(t.pool.min_replicas for t in tiers) > budget or len(tiers) < 2:
        return
    top = max(tiers, key=lambda t: t.priority)
    lower = [t for t in tiers if t.priority < top.priority]
    if not lower:
        return
    without = [t for t in tiers if t not in lower]
    gpus = GpuBudget(total_gpus=budget)
    minimum_lower_gpus = sum(t.pool.min_replicas * t.pool.gpus_per_replica for t in lower)
    alone = planner.plan(
        tiers=without,
        observations=obs,
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=budget - minimum_lower_gpus),
    )
    shared = planner.plan(tiers=tiers, observations=obs, model=h100, now_s=1000.0, budget=gpus)
    assert (
        shared.decisions[top.key].unserved_rate_rps
        <= alone.decisions[top.key].unserved_rate_rps + 1e-4
    )


def test_a_tier_at_its_max_replicas_moves_no_other_tier_onto_a_lender(
    h100: latency.LatencyModel,
) -> None:
    """Hypothesis's counterexample to `test_more_demand_never_yields_fewer_gpus`, kept.

    At twice the demand t0 needs more than its 3 replicas, so its own pool cannot serve it
    and the plan goes to the joint MILP; t2 (allowed to borrow from t1) is not short,
    so it keeps its own replica instead of riding on t1's spare room: 5 GPUs, not 4."""
    t0 = make_tier("t0", 0.3, 0.02, 0, min_replicas=0, max_replicas=3, borrow=False, lend=False)
    t1 = make_tier("t1", 0.3, 0.02, 0, min_replicas=0, max_replicas=1, borrow=False, lend=True)
    t2 = make_tier("t2", 0.3, 0.02, 0, min_replicas=0, max_replicas=1, borrow=True, lend=False)
    obs = observations(
        observe(t0, 6.0, prompt=2000.0, output=600.0),
        observe(t1, 1.0, prompt=200.0, output=30.0),
        observe(t2, 1.0, prompt=200.0, output=30.0),
    )
    tiers = [t0, t1, t2]
    base = planner.plan(tiers=tiers, observations=obs, model=h100, now_s=1000.0)
    more = planner.plan(tiers=tiers, observations=_scaled(obs, 2.0), model=h100, now_s=1000.0)
    assert more.decisions[t0.key].unserved_rate_rps > 0.0  # t0 is short at twice the demand
    assert more.decisions[t2.key].desired_replicas == 1
    assert more.decisions[t2.key].planned_spill_out_rps == 0.0
    assert more.total_gpus >= base.total_gpus == 5


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.floats(1.0, 4.0), st.floats(1.0, 4.0))
def test_more_headroom_never_yields_fewer_gpus(
    h100: latency.LatencyModel,
    scenario: tuple[list[Tier], Observations],
    low: float,
    high: float,
) -> None:
    # `spec.scaling.headroom` plans each tier for that multiple of its forecast: with no
    # budget, more of it on every tier never buys fewer GPUs, and 1.0 changes nothing.
    tiers, obs = scenario
    low, high = min(low, high), max(low, high)

    def gpus(headroom: float) -> int:
        held = [replace(t, scaling=replace(t.scaling, headroom=headroom)) for t in tiers]
        return planner.plan(tiers=held, observations=obs, model=h100, now_s=1000.0).total_gpus

    assert (
        gpus(1.0)
        == planner.plan(tiers=tiers, observations=obs, model=h100, now_s=1000.0).total_gpus
    )
    assert gpus(high) >= gpus(low)
