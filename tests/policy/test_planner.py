"""Planner behaviour: holding on stale metrics, breaches, cold starts, budgets, reasons."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace
from typing import Any

import pytest

from tests.policy.builders import decided, make_tier, observations, observe
from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import Plan, PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import GpuBudget, Scaling, Slo, Tier
from tierscale.policy import allocation, planner
from tierscale.policy.capacities import planning_percentile
from tierscale_predictor import capacity, latency

IDE = make_tier("ide", 0.3, 0.03, priority=100, min_replicas=1)
CHAT = make_tier("chat", 0.5, 0.05, priority=50, min_replicas=1)
BATCH = make_tier("batch", 5.0, 0.1, priority=0, lend=False)


def test_missing_metrics_hold_the_current_replicas_and_never_scale_to_zero(
    h100: latency.LatencyModel,
) -> None:
    result = planner.plan(tiers=[IDE], observations=Observations(), model=h100, now_s=1000.0)
    decision = result.decisions[IDE.key]
    assert decision.reason is Reason.HOLD_STALE_METRICS
    assert decision.desired_replicas == IDE.pool.min_replicas
    assert "no request-rate metric" in decision.message


def test_stale_metrics_hold_the_last_decision(h100: latency.LatencyModel) -> None:
    first = planner.plan(
        tiers=[IDE],
        observations=observations(observe(IDE, 20.0, current=3)),
        model=h100,
        now_s=1000.0,
    )
    stale = observations(
        observe(IDE, 0.0, now_s=1000.0, current=first.decisions[IDE.key].desired_replicas)
    )
    later = planner.plan(
        tiers=[IDE], observations=stale, model=h100, state=first.state, now_s=1300.0
    )
    assert later.decisions[IDE.key].reason is Reason.HOLD_STALE_METRICS
    assert later.decisions[IDE.key].desired_replicas == first.decisions[IDE.key].desired_replicas
    assert "old" in later.decisions[IDE.key].message


def test_demand_scales_up_at_once_with_a_forecast_reason(h100: latency.LatencyModel) -> None:
    result = planner.plan(
        tiers=[IDE],
        observations=observations(observe(IDE, 30.0, current=1)),
        model=h100,
        now_s=1000.0,
    )
    decision = result.decisions[IDE.key]
    assert decision.desired_replicas > 1
    assert decision.reason is Reason.FORECAST_UP
    assert decision.capacity_rps_per_replica > 0
    assert decision.predicted_ttft_s is not None and decision.predicted_ttft_s <= IDE.slo.ttft_s


def test_an_observed_breach_scales_up_even_when_the_model_disagrees(
    h100: latency.LatencyModel,
) -> None:
    # Light load the model thinks one replica handles, but the pool is observed breaking its SLO.
    obs = observations(observe(IDE, 0.5, current=1, ttft_s=0.9, tpot_s=0.02))
    result = planner.plan(
        tiers=[IDE], observations=obs, model=h100, state=decided(IDE), now_s=1000.0
    )
    decision = result.decisions[IDE.key]
    assert decision.desired_replicas >= 2
    assert decision.reason is Reason.SLO_BREACH
    assert result.state.bias_by_tier[IDE.key] == pytest.approx(1.15)
    assert "bias" in decision.message


def test_a_few_slow_requests_within_sampling_noise_are_not_a_breach(
    h100: latency.LatencyModel,
) -> None:
    # 0.5 rps over a minute is 30 requests: one miss (96.7 %) is noise for a 99 % target.
    noisy = replace(observe(IDE, 0.5, current=1, ttft_s=0.9), attainment_frac=29 / 30)
    result = planner.plan(tiers=[IDE], observations=observations(noisy), model=h100, now_s=1000.0)
    assert result.decisions[IDE.key].reason is not Reason.SLO_BREACH
    # 600 requests with 5 % missed is not noise.
    real = replace(
        observe(IDE, 10.0, current=1, ttft_s=0.9), attainment_frac=0.95, window_requests=600.0
    )
    result = planner.plan(tiers=[IDE], observations=observations(real), model=h100, now_s=1000.0)
    assert result.decisions[IDE.key].reason is Reason.SLO_BREACH
    assert "attainment 95.00%" in result.decisions[IDE.key].message


def test_scale_down_waits_for_the_stabilization_window(h100: latency.LatencyModel) -> None:
    state = None
    for now_s in (1000.0, 1100.0, 1200.0):
        result = planner.plan(
            tiers=[CHAT],
            observations=observations(observe(CHAT, 0.2, now_s=now_s, current=6)),
            model=h100,
            state=state,
            now_s=now_s,
        )
        assert result.decisions[CHAT.key].desired_replicas == 6
        assert result.decisions[CHAT.key].reason is Reason.STABILIZED
        state = result.state
    later = planner.plan(
        tiers=[CHAT],
        observations=observations(observe(CHAT, 0.2, now_s=1400.0, current=6)),
        model=h100,
        state=state,
        now_s=1400.0,
    )
    assert later.decisions[CHAT.key].desired_replicas == 5
    assert later.decisions[CHAT.key].reason is Reason.SCALE_DOWN_LIMITED
    assert later.decisions[CHAT.key].message.endswith(
        "-1 per decision (maxScaleDownReplicas) allows 5"
    )


def test_a_loose_tier_gets_its_own_replica_and_borrows_while_it_loads(
    h100: latency.LatencyModel,
) -> None:
    # No cap binds, so the loose tier's own pool is sized for it (spillover is planned
    # only where the pools on their own cannot serve); until that replica is Ready, its
    # traffic rides on the tight pool's Ready spare capacity.
    loose = make_tier("chat", 0.5, 0.05, priority=50)
    obs = observations(observe(IDE, 0.5, current=1), observe(loose, 0.3, current=0))
    result = planner.plan(tiers=[IDE, loose], observations=obs, model=h100, now_s=1000.0)
    assert result.decisions[loose.key].desired_replicas == 1
    assert result.decisions[loose.key].planned_spill_out_rps == 0.0
    assert result.decisions[loose.key].weights_by_pool == {IDE.key: pytest.approx(1.0)}
    assert result.decisions[IDE.key].spill_in_rps == pytest.approx(0.3)
    old = planner.plan(
        tiers=[IDE, loose],
        observations=obs,
        model=h100,
        now_s=1000.0,
        config=planner.PlannerConfig(spill_only_when_short=False),
    )
    assert old.decisions[loose.key].desired_replicas == 0  # the switch restores it


def test_spillover_never_stands_in_for_a_replica_the_borrower_could_have(
    h100: latency.LatencyModel,
) -> None:
    """Issue 11, gen-s2027-020 and -014: a borrower just over one replica's capacity kept
    1 replica, filled it to exactly the predicted capacity and put the rest on a lender's
    spare room. The model was optimistic for its long requests (batch ran at 88.6 % of
    requests in SLO against 98.3 % isolated) and, when demand rose on every tier, the
    lender's room was gone and the replica it stood in for a cold start away. Fails on the
    previous planner, which planned 1 replica and the spill."""
    loose = make_tier("chat", 0.5, 0.05, priority=50, min_replicas=1)
    probe = planner.plan(
        tiers=[IDE, loose],
        observations=observations(observe(IDE, 0.5, current=2), observe(loose, 1.0, current=1)),
        model=h100,
        now_s=1000.0,
    )
    own_rps = probe.decisions[loose.key].capacity_rps_per_replica
    assert own_rps > 0.0
    obs = observations(observe(IDE, 0.5, current=2), observe(loose, 1.03 * own_rps, current=2))
    result = planner.plan(tiers=[IDE, loose], observations=obs, model=h100, now_s=1000.0)
    borrower = result.decisions[loose.key]
    assert borrower.desired_replicas == 2
    assert borrower.planned_spill_out_rps == 0.0
    assert borrower.weights_by_pool == {loose.key: pytest.approx(1.0)}
    assert "spare capacity" not in borrower.message
    # Where a cap binds, spillover is planned: it serves what the pools alone cannot.
    capped = planner.plan(
        tiers=[IDE, loose],
        observations=observations(
            observe(IDE, 0.5, current=1), observe(loose, 1.03 * own_rps, current=1)
        ),
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=2),
    )
    short = capped.decisions[loose.key]
    assert short.desired_replicas == 1
    assert short.planned_spill_out_rps == pytest.approx(0.03 * own_rps, rel=0.05)
    assert "on tighter pools' spare capacity" in short.message


def test_while_new_replicas_load_spillover_absorbs_the_demand(h100: latency.LatencyModel) -> None:
    # Chat needs more replicas but none is Ready yet; IDE has Ready spare capacity.
    obs = observations(
        observe(IDE, 1.0, current=4, ready=4), observe(CHAT, 3.0, current=3, ready=0)
    )
    result = planner.plan(tiers=[IDE, CHAT], observations=obs, model=h100, now_s=1000.0)
    chat = result.decisions[CHAT.key]
    assert chat.weights_by_pool.get(IDE.key, 0.0) > 0.5
    assert chat.admission_cap_rps == 0.0


def _eight_gpus_for_three_tiers(h100: latency.LatencyModel) -> Plan:
    """IDE, CHAT and BATCH asking for more than an 8-GPU budget holds."""
    obs = observations(
        observe(IDE, 100.0, current=1),
        observe(CHAT, 150.0, current=1),
        observe(BATCH, 40.0, current=0, prompt=3000, output=400),
    )
    return planner.plan(
        tiers=[IDE, CHAT, BATCH],
        observations=obs,
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=8),
    )


def test_budget_degrades_the_lowest_priority_first(h100: latency.LatencyModel) -> None:
    result = _eight_gpus_for_three_tiers(h100)
    assert result.total_gpus <= 8
    assert result.budget_limited
    assert result.decisions[IDE.key].unserved_rate_rps == 0.0
    assert result.decisions[BATCH.key].reason is Reason.BUDGET_LIMITED
    assert "unserved" in result.decisions[BATCH.key].message


def test_a_budget_limited_plan_ranks_the_full_problem_once(
    h100: latency.LatencyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lexicographic solve is most of a budget-limited plan's time
    (docs/plan-latency.md): here the lean problem (demand as observed, no bias) cannot
    be served in full either, so it is ranked once, and the full problem once, above the
    lean floors. The previous planner ranked the full problem a first time as well, before
    the lean one (3 lexicographic solves)."""
    ranked: list[allocation.AllocationProblem] = []
    real = allocation._solve_by_priority

    def counted(problem: allocation.AllocationProblem, *rest: Any) -> Any:
        ranked.append(problem)
        return real(problem, *rest)

    monkeypatch.setattr(allocation, "_solve_by_priority", counted)
    assert _eight_gpus_for_three_tiers(h100).budget_limited
    lean, full = ranked  # exactly two
    own = [p.min_replicas for p in lean.pools]  # the tiers' minReplicas
    floors = [p.min_replicas for p in full.pools]
    assert all(f >= o for f, o in zip(floors, own, strict=True)) and floors != own


def test_a_served_model_without_a_latency_model_is_a_clear_error(
    h100: latency.LatencyModel,
) -> None:
    with pytest.raises(ValueError, match="no latency model for served model"):
        planner.plan(tiers=[IDE], observations=Observations(), model={"other": h100}, now_s=0.0)


def test_same_inputs_same_plan(h100: latency.LatencyModel) -> None:
    obs = observations(observe(IDE, 7.0, current=2), observe(CHAT, 9.0, current=2))
    first = planner.plan(tiers=[IDE, CHAT], observations=obs, model=h100, now_s=1000.0)
    second = planner.plan(tiers=[IDE, CHAT], observations=obs, model=h100, now_s=1000.0)
    assert first == second


def test_a_breach_already_answered_by_loading_replicas_adds_nothing(
    h100: latency.LatencyModel,
) -> None:
    # 3 replicas ordered after a breach, 1 Ready: the window still shows the breach.
    loading = replace(
        observe(IDE, 0.5, current=3, ready=1, ttft_s=0.9),
        attainment_frac=0.9,
        window_requests=600.0,
    )
    result = planner.plan(tiers=[IDE], observations=observations(loading), model=h100, now_s=1000.0)
    assert result.decisions[IDE.key].reason is not Reason.SLO_BREACH
    assert result.decisions[IDE.key].desired_replicas == 3
    assert result.state.bias_by_tier[IDE.key] == pytest.approx(1.0)


@pytest.mark.parametrize("present", [(3, 2), (2, 3), (4, 1)])
def test_a_budget_split_between_equal_tiers_stays_where_it_is(
    h100: latency.LatencyModel, present: tuple[int, int]
) -> None:
    """Two tiers alike in SLO, lengths and priority, both asking for more than a 5-GPU
    budget: every split of the 5 GPUs leaves as much unserved. The plan keeps the split
    the pools have; left to the solver, the split moved between decisions as its search
    path did (gen-s7-019 under a 6-GPU budget: 1 -> 8 scale events, docs/plan-latency.md)."""
    a = make_tier("twin-a", 1.0, 0.05, priority=1, borrow=False, lend=False)
    b = make_tier("twin-b", 1.0, 0.05, priority=1, borrow=False, lend=False)
    result = planner.plan(
        tiers=[a, b],
        observations=observations(
            observe(a, 200.0, current=present[0]), observe(b, 200.0, current=present[1])
        ),
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=5),
    )
    assert result.budget_limited
    assert (
        result.decisions[a.key].desired_replicas,
        result.decisions[b.key].desired_replicas,
    ) == present


def test_the_breach_guard_never_breaks_the_gpu_budget(h100: latency.LatencyModel) -> None:
    # Every tier breaches (so the guard wants current + 1) with the budget already full.
    tiers = [IDE, CHAT, BATCH]
    obs = observations(
        *[
            replace(
                observe(t, 5.0, current=2, prompt=3000, output=400),
                attainment_frac=0.5,
                window_requests=300.0,
            )
            for t in tiers
        ]
    )
    result = planner.plan(
        tiers=tiers, observations=obs, model=h100, now_s=1000.0, budget=GpuBudget(total_gpus=6)
    )
    assert result.total_gpus <= 6


def test_one_huge_prompt_in_the_window_does_not_drive_the_tier_to_max(
    h100: latency.LatencyModel,
) -> None:
    # A 60k-token p99 prompt misses a 300 ms TTFT on an idle replica: more replicas buy nothing.
    obs = replace(observe(IDE, 5.0, current=2, prompt=1000, output=200), prompt_tokens_p99=60_000)
    decision = planner.plan(
        tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0
    ).decisions[IDE.key]
    assert decision.capacity_rps_per_replica > 0.0
    assert decision.desired_replicas < IDE.pool.max_replicas


def test_spillover_is_routed_only_onto_replicas_that_stay(h100: latency.LatencyModel) -> None:
    # IDE has 6 Ready replicas but needs 1, and its window is covered, so it scales down
    # now; chat's new replicas are still loading. Chat may spill onto the IDE replicas
    # that stay, not onto the one this very plan starts draining.
    def obs_at(now_s: float) -> Observations:
        return observations(
            observe(IDE, 1.0, now_s=now_s, current=6, ready=6),
            observe(CHAT, 125.0, now_s=now_s, current=5, ready=0),
        )

    obs = obs_at(1000.0)
    earlier = planner.plan(tiers=[IDE, CHAT], observations=obs_at(600.0), model=h100, now_s=600.0)
    result = planner.plan(
        tiers=[IDE, CHAT],
        observations=obs,
        model=h100,
        state=earlier.state,
        now_s=1000.0,
        config=planner.PlannerConfig(admission_caps="always"),
    )
    ide, chat = result.decisions[IDE.key], result.decisions[CHAT.key]
    assert ide.desired_replicas == 5
    staying_rps = ide.desired_replicas * ide.capacity_rps_per_replica
    chat_on_ide_rps = chat.weights_by_pool[IDE.key] * 125.0
    assert 0.0 < chat_on_ide_rps <= staying_rps - 1.0 + 1e-6
    assert ide.admission_cap_rps == pytest.approx(staying_rps)


def test_a_breach_the_budget_explains_teaches_the_model_nothing(
    h100: latency.LatencyModel,
) -> None:
    # Batch was planned short of GPUs; its breach is the shortfall, not a model error.
    tiers = [IDE, CHAT, BATCH]
    budget = GpuBudget(total_gpus=8)
    calm = observations(
        observe(IDE, 100.0, current=3),
        observe(CHAT, 150.0, current=4),
        observe(BATCH, 40.0, current=1, prompt=3000, output=400),
    )
    first = planner.plan(tiers=tiers, observations=calm, model=h100, now_s=1000.0, budget=budget)
    assert first.decisions[BATCH.key].unserved_rate_rps > 0.0
    short = observations(
        *[o for k, o in calm.by_tier.items() if k != BATCH.key],
        replace(calm.by_tier[BATCH.key], attainment_frac=0.3, window_requests=2400.0),
    )
    second = planner.plan(
        tiers=tiers, observations=short, model=h100, state=first.state, now_s=1015.0, budget=budget
    )
    assert second.state.bias_by_tier[BATCH.key] == pytest.approx(1.0)


def test_a_breach_within_the_admission_cap_teaches_the_model_under_a_budget(
    h100: latency.LatencyModel,
) -> None:
    # The same shortfall, but the plan capped batch's admission at what its Ready replica
    # serves by the model: the pool got no more than the model says it carries, so its
    # breach is the model's error, and the cap (the pool's only guard) must learn from it.
    # Fails on the previous planner, which ignored every breach of a planned shortfall
    # (gen-s7-018: TTFT 7-20 s against 5 s for 30 minutes under an unchanging cap).
    tiers = [IDE, CHAT, BATCH]
    budget = GpuBudget(total_gpus=15)  # batch gets 2 replicas (1 Ready), short of 40 req/s
    cfg = planner.PlannerConfig(admission_caps="always")
    calm = observations(
        observe(IDE, 100.0, current=3),
        observe(CHAT, 150.0, current=4),
        observe(BATCH, 40.0, current=1, prompt=3000, output=400),
    )
    first = planner.plan(
        tiers=tiers,
        observations=calm,
        model=h100,
        state=decided(*tiers),
        now_s=1000.0,
        budget=budget,
        config=cfg,
    )
    capped = first.decisions[BATCH.key]
    assert capped.unserved_rate_rps > 0.0 and capped.admission_cap_rps is not None
    short = observations(
        *[o for k, o in calm.by_tier.items() if k != BATCH.key],
        replace(calm.by_tier[BATCH.key], attainment_frac=0.3, window_requests=2400.0),
    )
    second = planner.plan(
        tiers=tiers,
        observations=short,
        model=h100,
        state=first.state,
        now_s=1015.0,
        budget=budget,
        config=cfg,
    )
    assert second.state.bias_by_tier[BATCH.key] > 1.0
    after = second.decisions[BATCH.key]
    assert after.admission_cap_rps is not None
    assert after.admission_cap_rps < capped.admission_cap_rps


def test_a_tight_pool_is_not_grown_to_carry_a_loose_tiers_traffic(
    h100: latency.LatencyModel,
) -> None:
    # Serving chat on extra IDE replicas or on chat's own is the same GPU count to the
    # solver; only the own pool is stable and runs chat at chat's (looser) batch limit.
    tiers = [IDE, CHAT, make_tier("batch", 5.0, 0.1, priority=0)]
    rates = {IDE.key: 20.0, CHAT.key: 60.0, tiers[2].key: 100.0}
    obs = observations(*[observe(t, rates[t.key], current=0) for t in tiers])
    result = planner.plan(
        tiers=tiers, observations=obs, model=h100, now_s=1000.0, budget=GpuBudget(total_gpus=8)
    )
    ide = result.decisions[IDE.key]
    own_need = math.ceil(rates[IDE.key] / ide.capacity_rps_per_replica - 1e-9)
    assert ide.desired_replicas == max(own_need, IDE.pool.min_replicas)
    assert result.decisions[CHAT.key].spill_out_rps == pytest.approx(0.0, abs=1e-6)


def test_a_pool_with_smaller_prefill_chunks_is_planned_with_its_own_step_times(
    h100: latency.LatencyModel,
) -> None:
    # Code-like requests (2k-token prompts, short answers) at a 50 ms TPOT: a decode step
    # that shares the GPU with an 8192-token chunk is slow; 2048-token chunks are not.
    # The step model alone (the profile's linear step terms without the compute-bound
    # line and the costs outside the step), so the 1.5x margin measures chunking only.
    linear = replace(
        h100,
        compute_s_per_token=0.0,
        attention_s_per_token_pair=0.0,
        request_overhead_s=0.0,
        request_overhead_s_per_prompt_token=0.0,
        output_s_per_token=0.0,
    )
    default = make_tier("ide", 0.5, 0.05, priority=1)
    small = replace(default, pool=replace(default.pool, max_num_batched_tokens=2048))
    obs = replace(observe(default, 20.0, current=2, prompt=2048, output=28))
    caps = [
        planner.plan(tiers=[t], observations=observations(obs), model=linear, now_s=1000.0)
        .decisions[t.key]
        .capacity_rps_per_replica
        for t in (default, small)
    ]
    assert caps[1] > 1.5 * caps[0]


def test_a_pool_whose_prefill_chunks_break_its_tpot_is_told_which_would_not(
    h100: latency.LatencyModel,
) -> None:
    """The plan names the engine arguments (`policy.advice`), in the decision, its message
    and, through the status, the EngineArgsFit condition; the pool with them gets none."""
    default = make_tier("ide", 0.5, 0.03, priority=1)
    obs = replace(observe(default, 3.0, current=2, prompt=2048, output=28))
    decision = planner.plan(
        tiers=[default], observations=observations(obs), model=h100, now_s=1000.0
    ).decisions[default.key]
    assert decision.engine_advice is not None
    assert decision.engine_advice.startswith("with --max-num-batched-tokens ")
    assert decision.message.endswith(f"engine arguments: {decision.engine_advice}")
    advised = int(decision.engine_advice.split()[2])
    tuned = replace(
        default,
        pool=replace(default.pool, max_num_batched_tokens=advised, max_num_seqs=advised),
    )
    after = planner.plan(
        tiers=[tuned], observations=observations(obs), model=h100, now_s=1000.0
    ).decisions[tuned.key]
    assert after.engine_advice is None
    assert after.capacity_rps_per_replica > 1.25 * decision.capacity_rps_per_replica


def _slow_pool(tier_tpot_s: float, pool_rate_rps: float, current: int = 4) -> Observations:
    obs = replace(
        observe(IDE, pool_rate_rps, current=current, tpot_s=tier_tpot_s, ttft_s=0.2),
        pool_rate_rps=pool_rate_rps,
    )
    return observations(obs)


CALIBRATING = planner.PlannerConfig(calibrate_tpot=True)


def _run(
    obs: Observations,
    h100: latency.LatencyModel,
    ticks: int,
    config: planner.PlannerConfig = CALIBRATING,
) -> list[planner.Plan]:
    """The same window seen afresh every 15 s."""
    plans: list[planner.Plan] = []
    state = None
    for i in range(ticks):
        now_s = 1000.0 + 15.0 * i
        fresh = Observations(
            {k: replace(o, sampled_at_s=now_s - 5.0) for k, o in obs.by_tier.items()}
        )
        plans.append(
            planner.plan(
                tiers=[IDE], observations=fresh, model=h100, state=state, now_s=now_s, config=config
            )
        )
        state = plans[-1].state
    return plans


def test_a_pool_slower_than_its_model_is_calibrated_and_planned_with_less_capacity(
    h100: latency.LatencyModel,
) -> None:
    predicted = latency.predict(h100, 40.0 / 4, latency.WorkloadShape(1000, 200), 99.0)
    # Predicted p99 TPOT 16.5 ms, in vLLM's 10-25 ms bucket; observed 2x, in the 25-50 ms
    # one: the histograms prove the model at least 25 ms / 16.5 ms = x1.52 optimistic.
    assert predicted.tpot_s < 0.025 < 2.0 * predicted.tpot_s < 0.05
    plans = _run(_slow_pool(2.0 * predicted.tpot_s, 40.0), h100, ticks=24)
    first, last = plans[0].decisions[IDE.key], plans[-1].decisions[IDE.key]
    assert first.model_correction[1] > 1.0
    proven = 0.025 / predicted.tpot_s
    assert proven - 0.1 <= last.model_correction[1] <= proven + 0.02
    assert last.model_correction[0] == 1.0  # TTFT is not calibrated by default
    assert last.capacity_rps_per_replica < first.capacity_rps_per_replica
    assert plans[-1].state.correction_by_tier[IDE.key] == last.model_correction
    # Metrics go stale: the pool is held, and so is what was learned about it.
    held = planner.plan(
        tiers=[IDE],
        observations=_slow_pool(0.5, 40.0),
        model=h100,
        state=plans[-1].state,
        now_s=2000.0,
        config=CALIBRATING,
    )
    assert held.decisions[IDE.key].reason is Reason.HOLD_STALE_METRICS
    assert held.decisions[IDE.key].model_correction == last.model_correction


def test_calibration_learns_nothing_the_histogram_buckets_do_not_prove(
    h100: latency.LatencyModel,
) -> None:
    # gen-s2027-022 (no model mismatch): vLLM's 25-50 ms TPOT bucket put the batch pool's
    # interpolated p99 at 49.7 ms where the model said ~30 ms; calibration learned x1.6
    # from that and the batch tier fell from 92.2 to 67.3 % in SLO. Fails on the previous
    # planner, which learned from the interpolated value.
    predicted = latency.predict(h100, 40.0 / 4, latency.WorkloadShape(1000, 200), 99.0)
    same_bucket = 0.0249  # the prediction (16.5 ms) is in the same 10-25 ms bucket
    plans = _run(_slow_pool(same_bucket, 40.0), h100, ticks=6)
    assert plans[-1].decisions[IDE.key].model_correction == (1.0, 1.0)
    before = replace(CALIBRATING, calibration_bucket_evidence=False)
    learned = _run(_slow_pool(same_bucket, 40.0), h100, ticks=6, config=before)
    assert learned[-1].decisions[IDE.key].model_correction[1] > 1.2
    assert predicted.tpot_s < same_bucket


def test_an_overloaded_pool_teaches_calibration_nothing(h100: latency.LatencyModel) -> None:
    # gen-s2027-022: a batch pool with a queue (TTFT 38-79 s) showed TPOT p99 0.11-0.13 s
    # against ~0.04 s predicted at its served rate; learned as model error, it taught the
    # pool x2-3. Fails on the previous planner, which calibrated on overloaded windows.
    predicted = latency.predict(h100, 40.0 / 4, latency.WorkloadShape(1000, 200), 99.0)
    slow = _slow_pool(2.0 * predicted.tpot_s, 40.0)
    queued = Observations(
        {k: replace(o, waiting_requests=4.0) for k, o in slow.by_tier.items()}  # 1 per replica
    )
    assert _run(queued, h100, ticks=3)[-1].decisions[IDE.key].model_correction == (1.0, 1.0)
    short = Observations({k: replace(o, waiting_requests=3.0) for k, o in slow.by_tier.items()})
    assert _run(short, h100, ticks=3)[-1].decisions[IDE.key].model_correction[1] > 1.0


def test_calibration_is_off_by_default(h100: latency.LatencyModel) -> None:
    predicted = latency.predict(h100, 40.0 / 4, latency.WorkloadShape(1000, 200), 99.0)
    plans = _run(_slow_pool(1.3 * predicted.tpot_s, 40.0), h100, 4, planner.PlannerConfig())
    assert plans[-1].decisions[IDE.key].model_correction == (1.0, 1.0)


MEAN_CALIBRATING = planner.PlannerConfig(calibrate_tpot_mean=True)


def _mean_pool(factor: float, h100: latency.LatencyModel, **changes: Any) -> Observations:
    """IDE's pool at 40 req/s on 4 replicas whose mean TPOT is `factor` x the model's."""
    shape = latency.WorkloadShape(1000, 200)
    mean_s = factor * latency.tpot_mean_s(h100, 40.0 / 4, shape)
    obs = replace(observe(IDE, 40.0, current=4, ttft_s=0.2), pool_rate_rps=40.0, tpot_mean_s=mean_s)
    return observations(replace(obs, **changes))


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_the_mean_tpot_teaches_the_multiplier_both_ways(
    h100: latency.LatencyModel, factor: float
) -> None:
    # A 25 % error in either direction sits inside one of vLLM's TPOT buckets at the p99;
    # the mean (sum / count) shows it. Read as an offset on every request, it moves the
    # p99 by the same seconds: the multiplier converges to that share of the p99.
    shape = latency.WorkloadShape(1000, 200)
    mean_s = latency.tpot_mean_s(h100, 10.0, shape)
    tail_s = latency.predict(h100, 10.0, shape, IDE.slo.percentile).tpot_s
    expected = 1.0 + (factor - 1.0) * mean_s / tail_s
    plans = _run(_mean_pool(factor, h100), h100, ticks=30, config=MEAN_CALIBRATING)
    first, last = plans[0].decisions[IDE.key], plans[-1].decisions[IDE.key]
    assert (first.model_correction[1] - 1.0) * (factor - 1.0) > 0.0  # the right way at once
    # Within the dead band of the 0.02 grid under a 0.3 EWMA step (0.02 / 0.3 x ~0.5).
    assert last.model_correction[1] == pytest.approx(expected, abs=0.04)
    assert abs(last.model_correction[1] - 1.0) < abs(factor - 1.0)  # the tail moves less
    assert last.model_correction[0] == 1.0
    moved = last.capacity_rps_per_replica - first.capacity_rps_per_replica
    assert moved * (factor - 1.0) < 0.0  # a slower engine, less capacity; faster, more


def test_a_mean_as_modelled_teaches_nothing(h100: latency.LatencyModel) -> None:
    plans = _run(_mean_pool(1.0, h100), h100, ticks=6, config=MEAN_CALIBRATING)
    assert plans[-1].decisions[IDE.key].model_correction == (1.0, 1.0)


def test_the_mean_tpot_is_learned_only_from_a_steady_window(h100: latency.LatencyModel) -> None:
    def learned(obs: Observations, config: planner.PlannerConfig = MEAN_CALIBRATING) -> float:
        return _run(obs, h100, ticks=3, config=config)[-1].decisions[IDE.key].model_correction[1]

    assert learned(_mean_pool(1.25, h100)) > 1.0
    assert learned(_mean_pool(1.25, h100), planner.PlannerConfig()) == 1.0  # opt-in
    assert learned(_mean_pool(1.25, h100, waiting_requests=4.0)) == 1.0  # a queue
    assert learned(_mean_pool(1.25, h100, ready_replicas=2)) == 1.0  # replicas loading
    thin = replace(MEAN_CALIBRATING, calibration_min_mean_requests=40.0 * 60.0 + 1.0)
    assert learned(_mean_pool(1.25, h100), thin) == 1.0  # too few requests in the window


def test_thin_or_moving_windows_teach_the_model_nothing(h100: latency.LatencyModel) -> None:
    # 2 req/s over a minute leaves ~1 request beyond the p99: no percentile to trust.
    thin = _run(_slow_pool(0.2, 2.0, current=1), h100, ticks=3)
    assert thin[-1].decisions[IDE.key].model_correction == (1.0, 1.0)
    # Replicas still loading: the window mixes two pool sizes.
    loading = replace(observe(IDE, 40.0, current=4, ready=2, tpot_s=0.2), pool_rate_rps=40.0)
    moving = _run(observations(loading), h100, ticks=3)
    assert moving[-1].decisions[IDE.key].model_correction == (1.0, 1.0)


def test_ttft_calibration_is_opt_in(h100: latency.LatencyModel) -> None:
    # Predicted p99 TTFT 157 ms (vLLM's 100-250 ms bucket), observed 400 ms (250-500 ms).
    obs = replace(observe(IDE, 40.0, current=4, ttft_s=0.4, tpot_s=None), pool_rate_rps=40.0)
    off = planner.plan(tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0)
    on = planner.plan(
        tiers=[IDE],
        observations=observations(obs),
        model=h100,
        now_s=1000.0,
        config=planner.PlannerConfig(calibrate_ttft=True),
    )
    assert off.decisions[IDE.key].model_correction == (1.0, 1.0)
    assert on.decisions[IDE.key].model_correction[0] != 1.0


def test_a_mean_prompt_moves_at_once_only_beyond_its_windows_sampling_noise(
    h100: latency.LatencyModel,
) -> None:
    # Found by the generalisation benchmark (gen-s2027-012): a tier at 0.1 req/s sees 4-6
    # requests per one-minute window, whose mean prompt moved its capacity between 0.06
    # and 11.8 req/s per replica from one decision to the next. Fails on the previous
    # planner, which took every window's mean as observed.
    def mean_after(rate_rps: float, second_prompt: float) -> float:
        state = None
        for i, prompt in enumerate((2000.0, second_prompt)):
            now_s = 1000.0 + 15 * i
            obs = replace(
                observe(IDE, rate_rps, now_s=now_s, current=1, prompt=prompt),
                prompt_tokens_p99=8000.0,
            )
            state = planner.plan(
                tiers=[IDE], observations=observations(obs), model=h100, state=state, now_s=now_s
            ).state
        assert state is not None
        return state.lengths_by_tier[IDE.key][0]

    # 6 requests in the window (cv 0.8 with this p99): +50 % is within its noise, so it
    # moves by the EWMA only; doubling is beyond it and counts at once.
    assert mean_after(0.1, 3000.0) == pytest.approx(2000.0 * 1.5**0.1)
    assert mean_after(0.1, 4000.0) == 4000.0
    # 1,200 requests: +50 % is a real shift too.
    assert mean_after(20.0, 3000.0) == 3000.0
    # Off, every window's mean is taken as observed (the behaviour before).
    off = planner.PlannerConfig(smooth_mean_noise=False)
    obs = replace(observe(IDE, 0.1, current=1, prompt=2000.0), prompt_tokens_p99=8000.0)
    first = planner.plan(tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0)
    later = replace(
        observe(IDE, 0.1, current=1, prompt=3000.0, now_s=1015.0), prompt_tokens_p99=8000.0
    )
    second = planner.plan(
        tiers=[IDE],
        observations=observations(later),
        model=h100,
        state=first.state,
        now_s=1015.0,
        config=off,
    )
    assert second.state.lengths_by_tier[IDE.key][0] == 3000.0


def test_one_window_with_a_long_p99_prompt_moves_capacity_only_a_little(
    h100: latency.LatencyModel,
) -> None:
    def window(now_s: float, p99: float) -> Observations:
        obs = replace(observe(IDE, 20.0, now_s=now_s, current=3), prompt_tokens_p99=p99)
        return observations(obs)

    state = None
    for i in range(8):
        state = planner.plan(
            tiers=[IDE],
            observations=window(1000.0 + 15 * i, 3000.0),
            model=h100,
            state=state,
            now_s=1000.0 + 15 * i,
        ).state
    steady = state.last_decisions[IDE.key].capacity_rps_per_replica
    spike_now = 1000.0 + 15 * 8
    spiked = planner.plan(
        tiers=[IDE],
        observations=window(spike_now, 12000.0),
        model=h100,
        state=state,
        now_s=spike_now,
    )
    fresh = planner.plan(
        tiers=[IDE], observations=window(spike_now, 12000.0), model=h100, now_s=spike_now
    )
    cap = spiked.decisions[IDE.key].capacity_rps_per_replica
    assert fresh.decisions[IDE.key].capacity_rps_per_replica < cap < steady
    assert cap > 0.8 * steady
    assert 3000.0 < spiked.state.lengths_by_tier[IDE.key][2] < 12000.0  # type: ignore[operator]


def test_under_a_short_budget_todays_demand_comes_before_any_tiers_margins(
    h100: latency.LatencyModel,
) -> None:
    # IDE carries a learned bias of 2 (its margin); both tiers' demand of today fits 8 GPUs.
    tiers = [IDE, BATCH]
    obs = observations(
        observe(IDE, 60.0, current=0), observe(BATCH, 60.0, current=0, prompt=1000, output=200)
    )
    lean = planner.plan(tiers=tiers, observations=obs, model=h100, now_s=1000.0)
    need = {k: d.desired_replicas for k, d in lean.decisions.items()}
    budget = GpuBudget(total_gpus=sum(need.values()))
    biased = PlannerState(bias_by_tier={IDE.key: 2.0})
    on = planner.plan(
        tiers=tiers, observations=obs, model=h100, state=biased, now_s=1000.0, budget=budget
    )
    off = planner.plan(
        tiers=tiers,
        observations=obs,
        model=h100,
        state=biased,
        now_s=1000.0,
        budget=budget,
        config=planner.PlannerConfig(margins_yield_to_demand=False),
    )
    assert off.decisions[BATCH.key].desired_replicas < need[BATCH.key]
    assert on.decisions[BATCH.key].desired_replicas >= need[BATCH.key]
    assert on.total_gpus <= budget.total_gpus


# Explanations that agree with the numbers (issue 8) --------------------------------------


def test_a_step_limited_scale_up_names_the_need_and_the_step_limit(
    h100: latency.LatencyModel,
) -> None:
    # Demand for 10 IDE replicas (at the planner's own capacity per replica); the default
    # step adds 4.
    ide = replace(IDE, scaling=Scaling(cold_start_s=120.0))

    def decide(rate_rps: float) -> TierDecision:
        return planner.plan(
            tiers=[ide],
            observations=observations(observe(ide, rate_rps, current=2, prompt=1500)),
            model=h100,
            now_s=1000.0,
        ).decisions[ide.key]

    rate = 9.5 * decide(1.0).capacity_rps_per_replica
    decision = decide(rate)
    assert decision.desired_replicas == 6
    assert decision.needed_replicas == math.ceil(rate / decision.capacity_rps_per_replica)
    assert decision.needed_replicas == 10
    assert decision.reason is Reason.SCALE_UP_LIMITED
    assert decision.bound_by == (Reason.SCALE_UP_LIMITED,)
    assert decision.message == (
        f"2 -> 6 replicas: forecast {rate:.2f} req/s needs 10 replicas at "
        f"{decision.capacity_rps_per_replica:.2f} req/s each; "
        "+4 per decision (maxScaleUpReplicas) allows 6 now"
    )


def test_max_replicas_is_at_max_not_budget_limited(h100: latency.LatencyModel) -> None:
    small = make_tier("ide", 0.3, 0.03, max_replicas=3)

    def decide(rate_rps: float) -> Plan:
        return planner.plan(
            tiers=[small],
            observations=observations(observe(small, rate_rps, current=3, prompt=1500)),
            model=h100,
            now_s=1000.0,
        )

    # demand for 5 replicas at the planner's own capacity per replica, max 3
    result = decide(4.5 * decide(1.0).decisions[small.key].capacity_rps_per_replica)
    decision = result.decisions[small.key]
    assert decision.reason is Reason.AT_MAX and decision.desired_replicas == 3
    assert decision.needed_replicas is not None and decision.needed_replicas > 3
    assert "maxReplicas allows 3" in decision.message
    assert decision.unserved_rate_rps > 0.0 and not result.budget_limited


def test_the_budget_message_names_the_budget_and_what_was_planned_in_it(
    h100: latency.LatencyModel,
) -> None:
    obs = observations(
        observe(IDE, 100.0, current=1),
        observe(CHAT, 150.0, current=1),
        observe(BATCH, 40.0, current=0, prompt=3000, output=400),
    )
    result = planner.plan(
        tiers=[IDE, CHAT, BATCH],
        observations=obs,
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=8),
    )
    batch = result.decisions[BATCH.key]
    assert batch.reason is Reason.BUDGET_LIMITED
    assert f"the 8-GPU budget (8 GPUs planned) allows {batch.desired_replicas}" in batch.message
    assert f"leaving {batch.unserved_rate_rps:.2f} of 40.00 req/s" in batch.message


def test_reported_spill_is_what_the_routing_sends_now(h100: latency.LatencyModel) -> None:
    # Chat's own replicas are loading: routing sends part of it to IDE's spare Ready room,
    # which the plan (made for when chat's replicas are up) does not.
    obs = observations(
        observe(IDE, 1.0, current=4, ready=4), observe(CHAT, 3.0, current=3, ready=0)
    )
    result = planner.plan(tiers=[IDE, CHAT], observations=obs, model=h100, now_s=1000.0)
    chat, ide = result.decisions[CHAT.key], result.decisions[IDE.key]
    routed = 3.0 * chat.weights_by_pool[IDE.key]
    assert chat.spill_out_rps == pytest.approx(routed) and ide.spill_in_rps == pytest.approx(routed)
    assert chat.planned_spill_out_rps == pytest.approx(0.0, abs=1e-6)


def test_the_breach_verdict_is_on_the_decision(h100: latency.LatencyModel) -> None:
    noisy = replace(observe(IDE, 0.5, current=1, ttft_s=0.9), attainment_frac=29 / 30)
    real = replace(
        observe(IDE, 10.0, current=1, ttft_s=0.9), attainment_frac=0.95, window_requests=600.0
    )
    idle = observe(IDE, 0.0, current=1, ttft_s=0.9)
    verdicts = [
        planner.plan(tiers=[IDE], observations=observations(o), model=h100, now_s=1000.0)
        .decisions[IDE.key]
        .slo_breached
        for o in (noisy, real, idle)
    ]
    assert verdicts == [False, True, None]


def test_an_slo_no_replica_can_meet_is_said_so(h100: latency.LatencyModel) -> None:
    # 30k-token prompts cannot prefill within 300 ms even on an idle replica.
    obs = observe(IDE, 2.0, current=1, prompt=30_000, output=100)
    decision = planner.plan(
        tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0
    ).decisions[IDE.key]
    assert decision.capacity_rps_per_replica == 0.0 and decision.needed_replicas is None
    assert decision.reason is Reason.SLO_UNATTAINABLE
    assert decision.unserved_rate_rps == pytest.approx(2.0)
    assert "no replica of this pool meets the SLO at these request lengths" in decision.message
    # ... with the number that binds: the idle replica's predicted TTFT for such prompts.
    idle = re.search(
        r"\(idle: p99\.5 TTFT (\d+)ms > 300ms with p99 prompts of ([\d,]+) tokens\)",
        decision.message,
    )
    assert idle is not None, decision.message
    assert int(idle[1]) > 300 and int(idle[2].replace(",", "")) >= 30_000


def test_equal_slos_spill_only_onto_the_higher_priority_and_the_split_is_stable(
    h100: latency.LatencyModel,
) -> None:
    """Two tiers with one SLO under a budget that fits 3 replicas where each alone needs 2:
    the higher priority keeps its own 2 every time (before, gold 1 + silver 2 with gold's
    traffic on silver's pool was as cheap, and the solver alternated between the two)."""
    gold = make_tier("gold", 0.5, 0.05, priority=10, min_replicas=1, max_replicas=4)
    silver = make_tier("silver", 0.5, 0.05, priority=0, min_replicas=1, max_replicas=4)
    probe = planner.plan(
        tiers=[gold],
        observations=observations(observe(gold, 1.0, current=1)),
        model=h100,
        now_s=1000.0,
    )
    capacity_rps = probe.decisions[gold.key].capacity_rps_per_replica
    for k in range(8):
        rate_rps = capacity_rps * (1.25 + 0.02 * k)
        for g_rate, s_rate in ((rate_rps, rate_rps * 1.01), (rate_rps * 1.01, rate_rps)):
            result = planner.plan(
                tiers=[gold, silver],
                observations=observations(
                    observe(gold, g_rate, current=2, ready=2),
                    observe(silver, s_rate, current=1, ready=1),
                ),
                model=h100,
                now_s=1000.0,
                budget=GpuBudget(total_gpus=3),
            )
            g, s = result.decisions[gold.key], result.decisions[silver.key]
            assert (g.desired_replicas, s.desired_replicas) == (2, 1), (k, g.message, s.message)
            assert g.planned_spill_out_rps == 0.0, "gold's traffic stays on gold's pool"
            assert g.unserved_rate_rps == 0.0


@pytest.mark.parametrize(
    ("ready_age_s", "learns"),
    [(None, True), (10.0, False), (60.0 + 60.0 - 1.0, False), (60.0 + 60.0, True)],
)
def test_a_new_replicas_first_minute_teaches_no_bias(
    h100: latency.LatencyModel, ready_age_s: float | None, learns: bool
) -> None:
    # The same significant breach; the window (60 s) overlaps the newest replica's first
    # minute until 60 s + 60 s after it became Ready.
    now_s = 1000.0
    newest = None if ready_age_s is None else now_s - ready_age_s
    obs = replace(observe(IDE, 0.5, current=2, ttft_s=0.9, tpot_s=0.02), newest_ready_at_s=newest)
    prior = PlannerState(bias_by_tier={IDE.key: 1.3})
    result = planner.plan(
        tiers=[IDE], observations=observations(obs), model=h100, state=prior, now_s=now_s
    )
    decision = result.decisions[IDE.key]
    # The guard still answers the breach; only learning from it waits.
    assert decision.desired_replicas >= 3
    bias = result.state.bias_by_tier[IDE.key]
    if learns:
        assert bias == pytest.approx(1.3 * 1.15)
        assert "model bias now x1.49" in decision.message  # 1.3 x 1.15
    else:
        assert bias == pytest.approx(1.3)  # neither grown nor decayed
        assert "model bias kept at x1.30" in decision.message
        assert "first minute is not learned from" in decision.message


@pytest.mark.parametrize(
    ("ready_age_s", "attainment", "learns"),
    [(0.0, 0.9, True), (10.0, 0.5, True), (10.0, 0.9, False), (30.0, 0.5, False)],
)
def test_a_breach_that_holds_without_the_new_replicas_minute_teaches(
    h100: latency.LatencyModel, ready_age_s: float, attainment: float, learns: bool
) -> None:
    # Found by the generalisation benchmark (gen-s2027-021): a breach is counted once every
    # replica is Ready, which is the newest replica's first decision, so no breach the
    # guard had answered with a replica ever taught the bias or its floor, and the tier
    # cycled 2 -> 5 -> 2 replicas at 84-88 % of its 95 % target. Every request since the
    # replica became Ready is removed and counted as missed: 300 requests a minute, 90 %
    # attained is 30 missed; 10 s after Ready, 50 of them may be the new replica's.
    # Fails on the previous planner, which learned from none of these windows.
    now_s = 1000.0
    obs = replace(
        observe(IDE, 5.0, current=2),
        attainment_frac=attainment,
        window_requests=300.0,
        newest_ready_at_s=now_s - ready_age_s,
    )
    prior = PlannerState(bias_by_tier={IDE.key: 1.3})
    result = planner.plan(
        tiers=[IDE], observations=observations(obs), model=h100, state=prior, now_s=now_s
    )
    decision = result.decisions[IDE.key]
    assert decision.slo_breached is True
    bias = result.state.bias_by_tier[IDE.key]
    if learns:
        assert bias == pytest.approx(1.3 * 1.15)
        assert "model bias now x1.49" in decision.message
    else:
        assert bias == pytest.approx(1.3)
        assert "first minute is not learned from" in decision.message


def test_a_floor_is_learned_at_the_load_of_the_replicas_that_carried_the_window(
    h100: latency.LatencyModel,
) -> None:
    # gen-s20261130-006: one replica offered ~1.2 req/s breached while a second had just
    # become Ready; counted per Ready replica the breach was at 0.6 req/s, a x1.99 floor,
    # and the pool ran up to 21 replicas (7.41 GPU-hours; the oracle 3.47). The replica
    # in its first minute carried none of the window: the load is per the other one.
    now_s = 1000.0
    quiet = planner.plan(
        tiers=[IDE],
        observations=observations(observe(IDE, 1.0, current=1)),
        model=h100,
        now_s=now_s,
    )
    capacity_rps = quiet.decisions[IDE.key].capacity_rps_per_replica

    def floor(current: int, cfg: planner.PlannerConfig) -> float:
        obs = replace(
            observe(IDE, 0.9 * capacity_rps, current=current),
            attainment_frac=0.5,
            window_requests=300.0,
            newest_ready_at_s=now_s - 10.0,
        )
        result = planner.plan(
            tiers=[IDE],
            observations=observations(obs),
            model=h100,
            state=decided(IDE),
            now_s=now_s,
            config=cfg,
        )
        assert result.decisions[IDE.key].slo_breached is True
        return result.state.bias_floor_by_tier.get(IDE.key, 1.0)

    cfg = planner.PlannerConfig()
    assert floor(2, cfg) == pytest.approx(cfg.bias_step / 0.9, rel=0.01)  # x1.28
    assert floor(1, cfg) == 1.0  # only the new replica: no load it carried, no floor
    per_ready = replace(cfg, floor_load_without_newest=False)  # the previous planner
    assert floor(2, per_ready) == pytest.approx(cfg.max_bias)  # half the load: x2.56 -> x2


def test_a_floor_shrinks_with_the_model_capacity_it_was_proven_against(
    h100: latency.LatencyModel,
) -> None:
    # gen-s20261130-003: chat-2 breached once at 1.71 req/s per replica where the model
    # (leaning to the mean lengths) said 3.09, a x1.99 floor; the model then said 1.1-2.0
    # for the same requests and the floor still halved that for 25 minutes: 4-6 replicas
    # where the hindsight static fleet met the tier with 2. The breach proved the pool
    # serves at most ~1.5 req/s per replica; a model that says about that needs no floor.
    # Opt-in (`floor_follows_model`): on the Azure code trace the ratio is what holds.
    now_s = 1000.0
    short = planner.plan(
        tiers=[IDE],
        observations=observations(observe(IDE, 1.0, current=2)),
        model=h100,
        now_s=now_s,
    )
    short_rps = short.decisions[IDE.key].capacity_rps_per_replica
    breach_obs = replace(
        observe(IDE, 2 * 0.5 * short_rps, current=2),  # half the model's capacity: x2.3
        attainment_frac=0.5,
        window_requests=300.0,
    )
    one = planner.plan(
        tiers=[IDE],
        observations=observations(breach_obs),
        model=h100,
        state=decided(IDE),
        now_s=now_s,
    )
    floor = one.state.bias_floor_by_tier[IDE.key]
    assert floor == pytest.approx(planner.PlannerConfig().max_bias)
    assert one.state.floor_capacity_by_tier[IDE.key] == pytest.approx(short_rps, rel=0.01)

    def capacity_after(prompt: float, cfg: planner.PlannerConfig) -> tuple[float, float]:
        later_s = now_s + 15.0
        obs = replace(
            observe(IDE, 1.0, current=2, prompt=prompt, now_s=later_s),
            attainment_frac=1.0,
            window_requests=300.0,
        )
        model_rps = (
            planner.plan(tiers=[IDE], observations=observations(obs), model=h100, now_s=later_s)
            .decisions[IDE.key]
            .capacity_rps_per_replica
        )
        two = planner.plan(
            tiers=[IDE],
            observations=observations(obs),
            model=h100,
            state=one.state,
            now_s=later_s,
            config=cfg,
        )
        return model_rps, two.decisions[IDE.key].capacity_rps_per_replica

    cfg = planner.PlannerConfig(floor_follows_model=True)
    bound_rps = short_rps / floor  # what the breach proved, in requests/s per replica
    model_rps, planned_rps = capacity_after(1000.0, cfg)  # the same requests
    assert planned_rps == pytest.approx(bound_rps, rel=0.02)  # the floor, decayed a little
    model_rps, planned_rps = capacity_after(1300.0, cfg)  # longer: the model says less
    assert bound_rps < model_rps < short_rps
    # Shrunk by the ratio of the model's capacity now to its capacity at the breach: the
    # same bound in requests/s per replica.
    assert planned_rps == pytest.approx(bound_rps, rel=0.02)
    model_rps, previous_rps = capacity_after(1300.0, replace(cfg, floor_follows_model=False))
    assert previous_rps == pytest.approx(model_rps / floor, rel=0.02)  # the ratio kept
    assert planned_rps > 1.2 * previous_rps
    model_rps, planned_rps = capacity_after(3000.0, cfg)  # below the bound: no floor left
    assert model_rps < bound_rps
    decaying = 1.0 + (cfg.bias_step - 1.0) * cfg.bias_decay  # the breach's own bias
    assert planned_rps == pytest.approx(model_rps / decaying, rel=0.02)


@pytest.mark.parametrize(
    ("waiting_now", "later_s", "attainment", "learns"),
    [
        (40.0, 15.0, 0.5, False),  # the queue shrinks but is still too long: all explained
        (90.0, 15.0, 0.5, True),  # it grows at the pool's load: the model's error
        (0.0, 15.0, 0.9, False),  # drained: the first 45 s explain the 30 misses
        (0.0, 55.0, 0.5, True),  # drained: 5 s explained, 125 of 275 missed without them
        (0.0, 65.0, 0.5, True),  # the queue was before this window
    ],
)
def test_a_breach_a_carried_backlog_explains_teaches_no_bias(
    h100: latency.LatencyModel,
    waiting_now: float,
    later_s: float,
    attainment: float,
    learns: bool,
) -> None:
    # Found by the generalisation report (gen-s20261130-012): a pool scaled down into
    # rising load built a queue of 77; while the replicas that answered it drained it,
    # four windows in a row breached and taught a x2.0 bias and a x1.85 floor to a pool
    # whose engine was 10 % faster than its model. The first window, whose queue grew in
    # it, teaches (x1.15); a later one teaches only where its breach holds with the part
    # of the window the carried queue explains removed and counted as missed.
    # Fails on the previous planner, which learned from every one of them.
    first = replace(observe(IDE, 5.0, current=2), attainment_frac=0.5, window_requests=300.0)
    first = replace(first, waiting_requests=77.0)
    one = planner.plan(
        tiers=[IDE], observations=observations(first), model=h100, state=decided(IDE), now_s=1000.0
    )
    assert one.state.bias_by_tier[IDE.key] == pytest.approx(1.15)
    assert one.state.backlog_by_tier[IDE.key] == (1000.0, 77.0)
    now_s = 1000.0 + later_s
    second = replace(
        observe(IDE, 5.0, current=3, now_s=now_s),
        attainment_frac=attainment,
        window_requests=300.0,
        waiting_requests=waiting_now,
    )
    two = planner.plan(
        tiers=[IDE], observations=observations(second), model=h100, state=one.state, now_s=now_s
    )
    decision = two.decisions[IDE.key]
    assert decision.slo_breached is True
    bias = two.state.bias_by_tier[IDE.key]
    # The decaying bias; the one in effect is the floor the first breach proved (2.5 req/s
    # per replica breached against ~9 the model gives: x2.0), decayed.
    if learns:
        assert bias == pytest.approx(1.15 * 1.15)
        assert "model bias now x" in decision.message
    else:
        assert bias == pytest.approx(1.15)  # neither grown nor decayed
        assert re.search(
            rf"model bias kept at x1\.99 \(the 77 waiting {later_s:.0f} s ago explain it: "
            r"a backlog is not learned from\)",
            decision.message,
        ), decision.message
    learned_floor = two.state.bias_floor_by_tier[IDE.key]
    assert (learned_floor == 2.0) == learns  # not learned: the first floor, decayed
    ablation = planner.PlannerConfig(backlog_explains_breaches=False)
    again = planner.plan(
        tiers=[IDE],
        observations=observations(second),
        model=h100,
        state=one.state,
        now_s=now_s,
        config=ablation,
    )
    assert again.state.bias_by_tier[IDE.key] == pytest.approx(1.15 * 1.15)


def _breach_at(
    h100: latency.LatencyModel,
    now_s: float,
    current: int,
    attainment: float,
    state: PlannerState | None,
    cfg: planner.PlannerConfig,
) -> Plan:
    """IDE offered 20 req/s on `current` Ready replicas, `attainment` of a minute's 1,200
    requests in SLO."""
    obs = replace(
        observe(IDE, 20.0, current=current, now_s=now_s),
        attainment_frac=attainment,
        window_requests=1200.0,
    )
    return planner.plan(
        tiers=[IDE],
        observations=observations(obs),
        model=h100,
        state=state,
        now_s=now_s,
        config=cfg,
    )


@pytest.mark.parametrize(
    ("later_s", "attainment", "learns"),
    [
        (0.0, 0.5, False),  # the first decision: the whole window is before it
        (15.0, 0.5, False),  # 45 s of 60 before it: 900 requests, more than the 600 missed
        (15.0, 0.05, True),  # 1,140 missed: 240 of the 300 requests after it missed too
        (45.0, 0.5, True),  # 15 s before it: 300 of 900 after it missed
        (75.0, 0.5, True),  # the window began after it
    ],
)
def test_a_breach_before_the_pool_was_first_sized_teaches_no_bias(
    h100: latency.LatencyModel, later_s: float, attainment: float, learns: bool
) -> None:
    # Found by the generalisation benchmark: a run starts every pool at its minimum under
    # full load, so its first windows breach at a size nobody planned; of the 82 tiers
    # whose floor passed x1.3 on seeds 7, 2027 and 20261130, 35 learned it within the
    # first 120 s, most at x2.0, and held replicas they did not need. The part of the
    # window before the planner's first decision, where that decision raised the pool,
    # is removed and counted as missed, as for a new replica's first minute. Fails on
    # the previous planner, which learned from all of it.
    cfg = planner.PlannerConfig()
    state = None
    if later_s > 0.0:  # a first decision at 1000 s raised the pool from 1 replica
        first = _breach_at(h100, 1000.0, 1, 1.0, None, cfg)
        assert first.decisions[IDE.key].desired_replicas > 1
        state = first.state
        assert state.sized_up_at_by_tier[IDE.key] == 1000.0
    now_s = 1000.0 + later_s
    result = _breach_at(h100, now_s, 3, attainment, state, cfg)
    decision = result.decisions[IDE.key]
    assert decision.slo_breached is True
    # Remembered while the window holds a part from before it.
    assert result.state.sized_up_at_by_tier.get(IDE.key) == (1000.0 if later_s < 60.0 else None)
    if learns:
        assert result.state.bias_by_tier[IDE.key] == pytest.approx(cfg.bias_step)
        assert "model bias now x1.15" in decision.message
    else:
        assert result.state.bias_by_tier[IDE.key] == 1.0
        assert result.state.bias_floor_by_tier.get(IDE.key, 1.0) == 1.0
        before_s = 60.0 - later_s
        assert (
            f"model bias kept at x1.00 (the window began {before_s:.0f} s before tierscale "
            "first sized this pool: a size it had not chosen is not learned from)"
        ) in decision.message
    # The previous planner, kept as an ablation, learned from every one of them.
    ablation = replace(cfg, inherited_size_explains_breaches=False)
    again = _breach_at(h100, now_s, 3, attainment, state, ablation)
    assert again.state.bias_by_tier[IDE.key] == pytest.approx(cfg.bias_step)


def test_a_size_the_first_decision_kept_is_learned_from(h100: latency.LatencyModel) -> None:
    # gen-s2027-011: the first decision kept the pool's one replica (the model said it
    # carried the load); its next window breached, part of it from before that decision.
    # The planner chose that size, so the breach is the model's error and teaches: the
    # engine there is slower than the model, and a variant that removed that part of the
    # window anyway went into a flash crowd 2 replicas short (standard-0 87.2 % against
    # 92.0 %, target 99 %).
    cfg = planner.PlannerConfig()
    first = _breach_at(h100, 1000.0, 3, 1.0, None, cfg)
    assert first.decisions[IDE.key].desired_replicas <= 3
    assert IDE.key not in first.state.sized_up_at_by_tier
    later = _breach_at(h100, 1015.0, 3, 0.5, first.state, cfg)
    assert later.state.bias_by_tier[IDE.key] == pytest.approx(cfg.bias_step)
    # A state an earlier version saved has no record either: its tiers count as sized.
    old = PlannerState(last_plan_at_s=985.0, bias_by_tier={IDE.key: 1.0})
    assert _breach_at(h100, 1000.0, 1, 0.5, old, cfg).state.bias_by_tier[IDE.key] == (
        pytest.approx(cfg.bias_step)
    )


@pytest.mark.parametrize(
    ("own_rps", "attainment", "learns"),
    [
        (5.0, 0.5, False),  # half the 600 requests borrowed: they explain the 300 missed
        (5.0, 0.1, True),  # 540 missed: 240 of the pool's own 300 missed too
        (10.0, 0.5, True),  # nothing borrowed
    ],
)
def test_a_lenders_breach_the_borrowed_requests_explain_teaches_no_bias(
    h100: latency.LatencyModel, own_rps: float, attainment: float, learns: bool
) -> None:
    # gen-s20261130-012: vLLM's histograms are per pool, so the requests chat-0's pool
    # borrowed from standard-1 (longer prompts, a looser SLO) were judged by chat-0's
    # SLO; the next breach proved chat-0 a x1.25 floor, and under the 15-GPU budget
    # standard-1 lost a replica to it (75.0 % of its 90 %; 96.3 % without spillover).
    # Fails on the previous planner, which learned from every lender's breach.
    def plan(cfg: planner.PlannerConfig) -> Plan:
        obs = replace(
            observe(IDE, own_rps, current=3),
            pool_rate_rps=10.0,  # finished on the pool, borrowed requests included
            attainment_frac=attainment,
            window_requests=600.0,
        )
        return planner.plan(
            tiers=[IDE],
            observations=observations(obs),
            model=h100,
            state=decided(IDE),
            now_s=1000.0,
            config=cfg,
        )

    cfg = planner.PlannerConfig()
    result = plan(cfg)
    decision = result.decisions[IDE.key]
    assert decision.slo_breached is True
    if learns:
        assert result.state.bias_by_tier[IDE.key] == pytest.approx(cfg.bias_step)
    else:
        assert result.state.bias_by_tier[IDE.key] == 1.0
        assert result.state.bias_floor_by_tier.get(IDE.key, 1.0) == 1.0
        assert (
            "model bias kept at x1.00 (50% of the requests the pool finished were other "
            "tiers': a lender's breach is not learned from)"
        ) in decision.message
    ablation = replace(cfg, borrowed_requests_explain_breaches=False)
    assert plan(ablation).state.bias_by_tier[IDE.key] == pytest.approx(cfg.bias_step)


def test_a_ready_time_after_the_decision_time_pauses_learning(
    h100: latency.LatencyModel,
) -> None:
    obs = replace(observe(IDE, 0.5, current=2, ttft_s=0.9, tpot_s=0.02), newest_ready_at_s=1002.0)
    result = planner.plan(tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0)
    assert result.state.bias_by_tier[IDE.key] == pytest.approx(1.0)


def test_a_new_replicas_first_minute_is_not_calibrated_on(h100: latency.LatencyModel) -> None:
    predicted = latency.predict(h100, 40.0 / 4, latency.WorkloadShape(1000, 200), 99.0)
    slow = _slow_pool(2.0 * predicted.tpot_s, 40.0)  # a bucket above the prediction
    learned = _run(slow, h100, ticks=3)[-1].decisions[IDE.key].model_correction
    assert learned[1] > 1.0
    # Every window of the run holds a replica's first minute: it became Ready at the
    # first decision, and the run ends 30 s later.
    just_ready = Observations(
        {k: replace(o, newest_ready_at_s=1000.0) for k, o in slow.by_tier.items()}
    )
    paused = _run(just_ready, h100, ticks=3)[-1].decisions[IDE.key].model_correction
    assert paused == (1.0, 1.0)


def test_a_scale_down_keeps_the_replicas_the_load_the_pool_serves_now_needs(
    h100: latency.LatencyModel,
) -> None:
    # The tier's own demand is tiny, but its pool still serves 60 req/s (traffic routed to
    # it in the last window): N -> N-1 is predicted at that load, not assumed.
    chat = replace(CHAT, scaling=replace(CHAT.scaling, max_scale_down_replicas=10))

    def window(now_s: float, pool_rate_rps: float) -> Observations:
        obs = observe(chat, 0.2, now_s=now_s, current=6)
        return observations(replace(obs, pool_rate_rps=pool_rate_rps))

    state = None
    for now_s in (1000.0, 1100.0, 1200.0, 1400.0):
        result = planner.plan(
            tiers=[chat], observations=window(now_s, 60.0), model=h100, state=state, now_s=now_s
        )
        state = result.state
    held = result.decisions[chat.key]
    per_replica = held.capacity_rps_per_replica
    need = math.ceil(60.0 / per_replica)
    assert 1 < need < 6 and held.desired_replicas == need
    assert held.reason is Reason.STABILIZED
    assert f"the 60.00 req/s the pool serves now ({per_replica:.2f} req/s per replica)" in (
        held.message
    )
    # Once the pool's load has gone, the scale-down resumes.
    later = planner.plan(
        tiers=[chat], observations=window(1500.0, 0.2), model=h100, state=state, now_s=1500.0
    )
    assert later.decisions[chat.key].desired_replicas < need


def _capped(
    h100: latency.LatencyModel, obs: TierObservation, budget: GpuBudget | None = None
) -> tuple[float | None, float]:
    """The decision's admission cap, and its capacity per replica."""
    decision = planner.plan(
        tiers=[IDE],
        observations=observations(obs),
        model=h100,
        state=decided(IDE),
        now_s=1000.0,
        budget=budget,
    ).decisions[IDE.key]
    return decision.admission_cap_rps, decision.capacity_rps_per_replica


def test_a_pool_is_capped_only_where_a_cap_protects_it(h100: latency.LatencyModel) -> None:
    # Found by S3 and the generalisation benchmark: caps from a model more pessimistic
    # than the pool turned away requests the pool would have served. Fails on the
    # previous planner, which capped every pool.
    calm = observe(IDE, 5.0, current=2)
    cap, capacity_rps = _capped(h100, calm)
    assert cap is None
    # The SLO observed breached: capped at what the Ready replicas serve (the capacity
    # is the bias-corrected one the breach taught).
    cap, breached_rps = _capped(h100, replace(calm, attainment_frac=0.5, window_requests=300.0))
    assert breached_rps < capacity_rps and cap == pytest.approx(2 * breached_rps)
    # A queue that takes longer than the TTFT SLO to drain at that capacity: capped; a
    # shorter one is a burst the pool absorbs.
    drain = 2 * capacity_rps * IDE.slo.ttft_s
    assert _capped(h100, replace(calm, waiting_requests=1.1 * drain))[0] == pytest.approx(
        2 * capacity_rps
    )
    assert _capped(h100, replace(calm, waiting_requests=0.9 * drain))[0] is None
    # Replicas loading under more demand than the Ready one serves: capped at the Ready one.
    loading = observe(IDE, 3.0 * capacity_rps, current=4, ready=1)
    assert _capped(h100, loading)[0] == pytest.approx(capacity_rps)
    # The GPU budget leaves demand unserved by the model: no cap until the pool shows it.
    short = observe(IDE, 5.0 * capacity_rps, current=2)
    assert _capped(h100, short, GpuBudget(total_gpus=2))[0] is None
    queued = replace(short, waiting_requests=1.1 * drain)
    assert _capped(h100, queued, GpuBudget(total_gpus=2))[0] == pytest.approx(2 * capacity_rps)
    # The behaviour before, kept as an ablation: every pool capped.
    always = planner.PlannerConfig(admission_caps="always")
    decision = planner.plan(
        tiers=[IDE], observations=observations(calm), model=h100, now_s=1000.0, config=always
    ).decisions[IDE.key]
    assert decision.admission_cap_rps == pytest.approx(2 * capacity_rps)


def test_a_pool_the_model_cannot_size_is_never_capped_at_zero(
    h100: latency.LatencyModel,
) -> None:
    # Found by the generalisation benchmark (gen-s7-009): prompts long enough that the
    # model predicts even an idle replica misses the TTFT SLO's percentile give a
    # capacity of 0 req/s; with the SLO observed breached, the cap of 0 turned away 2,159
    # of 3,133 requests that the pool, at p50 TTFT 0.28 s, mostly served in SLO. Fails
    # on the previous planner, which capped such a pool at 0.
    breached = replace(
        observe(IDE, 2.0, current=3, prompt=60_000.0),
        attainment_frac=0.5,
        window_requests=300.0,
    )
    cap, capacity_rps = _capped(h100, breached)
    assert capacity_rps == 0.0
    assert cap is None
    # The breach still buys a replica: the guard scales up where the model cannot.
    decision = planner.plan(
        tiers=[IDE], observations=observations(breached), model=h100, now_s=1000.0
    ).decisions[IDE.key]
    assert decision.desired_replicas == 4


def test_a_pool_whose_tails_miss_the_slo_idle_is_sized_for_its_mean_lengths(
    h100: latency.LatencyModel,
) -> None:
    # Found by the generalisation benchmark (gen-s7-009): with capacity 0 the planner sized
    # nothing and scaled only on breaches, one replica per cold start, while one replica
    # queued 1.5 req/s of 4,700-token prompts to a p99 TTFT of 157 s. Fails on the
    # previous planner (capacity 0, one replica for any rate).
    def decide(rate_rps: float, **extra: float) -> TierDecision:
        obs = replace(observe(IDE, rate_rps, current=1, prompt=3000.0), **extra)
        return planner.plan(
            tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0
        ).decisions[IDE.key]

    calm = decide(2.0)
    per_replica = calm.capacity_rps_per_replica
    assert per_replica > 0.0 and calm.needed_replicas == 1
    assert "sized for the mean lengths: no replica meets the SLO at the tail lengths" in (
        calm.message
    )
    # Replicas follow the load like any pool's ...
    busy = decide(4.0 * per_replica)
    assert busy.desired_replicas == busy.needed_replicas == 4
    # ... but a breach caps nothing: the fallback capacity is not one the SLO was met at.
    breached = decide(2.0, attainment_frac=0.5, window_requests=300.0)
    assert breached.slo_breached and breached.admission_cap_rps is None
    # A borrower is never sized onto a lender whose SLO its tails miss.
    loose = make_tier("chat", 0.3, 0.05, priority=10)
    obs = observations(observe(IDE, 0.5, current=2), observe(loose, 2.0, current=1, prompt=3000.0))
    result = planner.plan(tiers=[IDE, loose], observations=obs, model=h100, now_s=1000.0)
    assert result.decisions[loose.key].weights_by_pool == {loose.key: pytest.approx(1.0)}


def test_a_pool_sized_for_its_mean_lengths_loses_capacity_as_its_prompts_grow(
    h100: latency.LatencyModel,
) -> None:
    # Found by the generalisation benchmark (gen-s7-015): a tier whose p99 prompts miss
    # the TTFT SLO even on an idle replica was planned at 1.84 and 0.03 req/s per replica
    # in alternate decisions as its mean prompt moved a little, and each low value bought
    # 4 replicas the scale-down window then held (91 replicas for 9 req/s). Fails on the
    # previous planner: capacity 0.49 req/s at 2,250-token prompts, 4.24 at 2,500.
    def per_replica(prompt: float) -> float:
        obs = replace(observe(IDE, 2.0, current=1, prompt=prompt), prompt_tokens_p99=8.0 * prompt)
        decision = planner.plan(
            tiers=[IDE], observations=observations(obs), model=h100, now_s=1000.0
        ).decisions[IDE.key]
        assert "sized for the mean lengths" in decision.message
        return decision.capacity_rps_per_replica

    capacities = [per_replica(float(p)) for p in range(1000, 5001, 250)]
    assert all(c > 0.0 for c in capacities)
    assert all(longer <= shorter for shorter, longer in itertools.pairwise(capacities))


def test_a_tail_an_idle_replica_barely_meets_does_not_buy_replicas_for_it(
    h100: latency.LatencyModel,
) -> None:
    # Found by the generalisation benchmark (gen-s20261130-024): a 2 s TTFT tier at p99.5
    # whose ~16,000-token p99 an idle replica served in 2.01-2.13 s was planned at 0.02-0.32
    # req/s per replica where it met the tail, 0.77 where it did not, and held 14 replicas
    # for what 2 gave. The capacity now leans to the mean lengths' as the tail nears the
    # point no replica meets. Fails on the previous planner: 0.21 req/s per replica (10
    # replicas for 2 req/s) at a 21,000-token p99, 1.76 at 21,500.
    tier = make_tier("chat", 1.0, 0.15, priority=10, min_replicas=1)

    def decide(p99: float) -> TierDecision:
        obs = replace(observe(tier, 2.0, current=1, prompt=7000.0), prompt_tokens_p99=p99)
        return planner.plan(
            tiers=[tier], observations=observations(obs), model=h100, now_s=1000.0
        ).decisions[tier.key]

    sweep = [decide(float(p99)) for p99 in range(15000, 26001, 500)]
    capacities = [d.capacity_rps_per_replica for d in sweep]
    beyond = capacities[-1]  # no replica meets this tail: sized for the mean lengths
    assert "sized for the mean lengths: no replica meets" in sweep[-1].message
    assert min(capacities) >= 0.2 * beyond
    leaning = [d for d in sweep if "sized partly for the mean lengths" in d.message]
    assert leaning
    for d in leaning:
        match = re.search(r"tail only up to ([\d.]+)% busy \(< 10%\)", d.message)
        assert match and 0.0 < float(match.group(1)) < 10.0
        assert d.admission_cap_rps is not None  # the tail is met, at a lower busy fraction


def test_a_queue_the_pool_cannot_drain_within_the_slo_scales_it_in_proportion(
    h100: latency.LatencyModel,
) -> None:
    # Issue 11: with 400 requests waiting and 0 % attainment the planner added one replica
    # per tier every ~2 minutes, as the one-minute rate trailed the flash crowd. Fails on
    # the previous planner, which sized the pool for the rate alone.
    chat = make_tier("chat", 1.0, 0.05, cold_start_s=120.0)
    LONG = {"prompt": 4000.0, "output": 400.0}

    def decide(waiting: float, rate_rps: float) -> TierDecision:
        obs = replace(observe(chat, rate_rps, current=1, **LONG), waiting_requests=waiting)
        return planner.plan(
            tiers=[chat], observations=observations(obs), model=h100, now_s=1000.0
        ).decisions[chat.key]

    # The capacity depends on the lengths and the SLO, not the rate: one replica's worth.
    per_replica = decide(0.0, 1.0).capacity_rps_per_replica
    rate_rps = 0.8 * per_replica
    calm = decide(0.0, rate_rps)
    assert calm.capacity_rps_per_replica == per_replica and calm.desired_replicas == 1
    # A queue the Ready replicas serve within the TTFT SLO is a burst: nothing added.
    short = decide(0.9 * per_replica * chat.slo.ttft_s, rate_rps)
    assert short.forecast_rate_rps == pytest.approx(rate_rps)
    assert short.desired_replicas == calm.desired_replicas
    # 400 waiting: drained over the 120 s cold start, +3.33 req/s, replicas to match.
    crowd = decide(400.0, rate_rps)
    assert crowd.forecast_rate_rps == pytest.approx(rate_rps + 400.0 / 120.0)
    assert crowd.needed_replicas == math.ceil((rate_rps + 400.0 / 120.0) / per_replica)
    assert crowd.desired_replicas == crowd.needed_replicas > calm.desired_replicas
    assert "+ 3.33 req/s to drain the 400 waiting within 120s" in crowd.message
    # Off (the ablation): the rate alone.
    off = planner.plan(
        tiers=[chat],
        observations=observations(
            replace(observe(chat, rate_rps, current=1, **LONG), waiting_requests=400.0)
        ),
        model=h100,
        now_s=1000.0,
        config=planner.PlannerConfig(drain_backlog=False),
    ).decisions[chat.key]
    assert off.desired_replicas == calm.desired_replicas


def test_a_lender_in_trouble_carries_no_other_tiers_traffic(h100: latency.LatencyModel) -> None:
    # Issue 11: batch traffic spilled onto a standard pool running with 230 requests
    # waiting and 2 of 8 replicas Ready; batch got 77 % where, isolated, it got 100 %.
    # Fails on the previous planner, which lent any pool's predicted spare capacity.
    loose = make_tier("chat", 0.5, 0.05, priority=50)
    healthy = observe(IDE, 0.5, current=2)

    def spilled(lender: TierObservation, prior: PlannerState | None = None) -> float:
        obs = observations(lender, observe(loose, 0.3, current=0))
        result = planner.plan(
            tiers=[IDE, loose], observations=obs, model=h100, now_s=1000.0, state=prior
        )
        borrower = result.decisions[loose.key]
        if borrower.weights_by_pool.get(IDE.key, 0.0) == 0.0:
            assert borrower.desired_replicas >= 1  # served at home instead
        return borrower.weights_by_pool.get(IDE.key, 0.0)

    assert spilled(healthy) == pytest.approx(1.0)
    # Its SLO observed breached, some of its replicas still loading, or its model biased
    # up by a recent breach: it lends nothing.
    assert spilled(replace(healthy, attainment_frac=0.5, window_requests=300.0)) == 0.0
    assert spilled(observe(IDE, 0.5, current=3, ready=2)) == 0.0
    biased = PlannerState(bias_by_tier={IDE.key: 1.15})
    assert spilled(healthy, biased) == 0.0
    assert spilled(healthy, PlannerState(bias_by_tier={IDE.key: 1.04})) == pytest.approx(1.0)


def test_a_borrower_is_told_why_its_spillover_was_withdrawn(h100: latency.LatencyModel) -> None:
    # Issue 11: spillover withdrawn from a lender in trouble must be explained to the tier
    # that loses it, not only to the lender. Fails where the message does not say it.
    loose = make_tier("chat", 0.5, 0.05, priority=50)
    first = planner.plan(
        tiers=[IDE, loose],
        observations=observations(observe(IDE, 0.5, current=2), observe(loose, 0.3, current=0)),
        model=h100,
        now_s=1000.0,
    )
    assert first.decisions[loose.key].weights_by_pool.get(IDE.key, 0.0) > 0.0
    loading = planner.plan(
        tiers=[IDE, loose],
        observations=observations(
            observe(IDE, 0.5, current=3, ready=2), observe(loose, 0.3, current=0)
        ),
        model=h100,
        now_s=1015.0,
        state=first.state,
    ).decisions[loose.key]
    assert loading.weights_by_pool.get(IDE.key, 0.0) == 0.0
    assert f"no spillover onto {IDE.key} any more: 1 of its replicas still loading" in (
        loading.message
    )
    # A lender still healthy: nothing to say.
    again = planner.plan(
        tiers=[IDE, loose],
        observations=observations(observe(IDE, 0.5, current=2), observe(loose, 0.3, current=0)),
        model=h100,
        now_s=1015.0,
        state=first.state,
    ).decisions[loose.key]
    assert "no spillover onto" not in again.message


def test_a_biased_lender_is_not_kept_for_spillover_the_routing_never_sends(
    h100: latency.LatencyModel,
) -> None:
    # Found by the explanation property test: with demand left unserved, the lean
    # "demand before margins" problem dropped the bias and with it the lender-health
    # check, so it held a replica of the biased lender for a borrower's traffic that the
    # routing, with the bias, never sent; the lender's message said it needed 0.
    now = Scaling(cold_start_s=60.0, scale_down_stabilization_s=0.0)
    lender = replace(make_tier("t1", 0.3, 0.02, max_replicas=1), scaling=now)
    borrower = replace(make_tier("t3", 0.3, 0.02, max_replicas=1, lend=False), scaling=now)

    def second_tick(bias: float) -> Plan:
        state = PlannerState(bias_by_tier={lender.key: bias})
        for now_s in (985.0, 1000.0):
            obs = observations(
                observe(lender, 0.0, current=1, now_s=now_s),
                observe(borrower, 30.0, current=1, now_s=now_s),
            )
            result = planner.plan(
                tiers=[lender, borrower], observations=obs, model=h100, now_s=now_s, state=state
            )
            state = result.state
        return result

    # Healthy, the lender is kept to its own need (0): borrowers use only spare room.
    assert second_tick(1.0).decisions[lender.key].desired_replicas == 0
    biased = second_tick(1.15).decisions
    assert biased[borrower.key].weights_by_pool.get(lender.key, 0.0) == 0.0
    assert biased[lender.key].needed_replicas == 0
    assert biased[lender.key].desired_replicas == 0


def _after_a_breach_at(
    h100: latency.LatencyModel, load_frac: float, config: planner.PlannerConfig
) -> tuple[float, list[TierDecision]]:
    """CHAT breaches at 2 Ready replicas each offered `load_frac` of the model's capacity,
    then keeps its SLO for 10 minutes at the same rate: (capacity, decisions after)."""
    quiet = planner.plan(
        tiers=[CHAT],
        observations=observations(observe(CHAT, 1.0, current=2)),
        model=h100,
        now_s=1000.0,
        config=config,
    )
    capacity_rps = quiet.decisions[CHAT.key].capacity_rps_per_replica
    rate_rps = 2 * load_frac * capacity_rps
    breach = observe(CHAT, rate_rps, now_s=1000.0, current=2, ttft_s=2.0)
    state = planner.plan(
        tiers=[CHAT],
        observations=observations(breach),
        model=h100,
        state=decided(CHAT),
        now_s=1000.0,
        config=config,
    ).state
    after = []
    for k in range(1, 41):  # every 15 s, for 10 minutes, the SLO kept
        now_s = 1000.0 + 15.0 * k
        current = state.last_decisions[CHAT.key].desired_replicas
        result = planner.plan(
            tiers=[CHAT],
            observations=observations(observe(CHAT, rate_rps, now_s=now_s, current=current)),
            model=h100,
            now_s=now_s,
            state=state,
            config=config,
        )
        after.append(result.decisions[CHAT.key])
        state = result.state
    return capacity_rps, after


def test_a_pool_is_not_planned_back_to_the_load_it_breached_at(
    h100: latency.LatencyModel,
) -> None:
    # gen-s2027-027: 2 replicas breach at ~95 % of the model's capacity each; the bias
    # alone fades in ~5 minutes and the planner went back to 2, breached again, and
    # cycled 2 -> 6 -> 2 every ~10 minutes. The load it breached at now bounds it.
    capacity_rps, after = _after_a_breach_at(h100, 0.9, planner.PlannerConfig())
    last = after[-1]
    assert last.needed_replicas == 3  # 1.8 capacities of demand, each replica < 0.9 of one
    assert last.capacity_rps_per_replica < 0.9 * capacity_rps
    assert re.search(
        r"\(x1\.\d\d below the model: a breach at a load it predicted safe\)", last.message
    )
    forgetful = replace(planner.PlannerConfig(), breach_memory_half_life_s=None)
    _, before = _after_a_breach_at(h100, 0.9, forgetful)
    assert before[-1].needed_replicas == 2  # what the planner did before


def test_a_breach_beyond_the_models_capacity_proves_no_floor(
    h100: latency.LatencyModel,
) -> None:
    # Offered 1.3 capacities per replica (a burst, or a queue at the start): the breach
    # is explained by the load itself; the model is not shown wrong.
    capacity_rps, after = _after_a_breach_at(h100, 1.3, planner.PlannerConfig())
    assert after[-1].capacity_rps_per_replica == pytest.approx(capacity_rps, rel=0.02)
    assert "below the model" not in after[-1].message


def test_each_latency_is_planned_at_the_split_of_the_attainment_target(
    h100: latency.LatencyModel,
) -> None:
    # Issue 11: a 95 % tier with the default percentile 99 was planned at p99, stricter
    # than the target SLOMet, the breach guard and the benchmarks judge: gen-s7-013's
    # 95 % tier ran at 0.2-0.6 req/s per replica where the hindsight static fleet met it
    # at about 2 (3.65x the oracle's GPU-hours). Fails on the previous planner (p99).
    def tier(attainment: float, percentile: float = 99.0) -> Tier:
        base = make_tier("chat", 1.0, 0.05)
        slo = replace(base.slo, attainment_frac=attainment, percentile=percentile)
        return replace(base, slo=slo)

    assert planning_percentile(tier(0.99)) == pytest.approx(99.5)
    assert planning_percentile(tier(0.95)) == pytest.approx(97.5)
    assert planning_percentile(tier(0.90)) == pytest.approx(95.0)
    assert planning_percentile(tier(0.99, percentile=99.9)) == pytest.approx(99.5)
    assert planning_percentile(tier(1.0)) == pytest.approx(99.9)
    # And the plan uses it: the 90 % tier's replica carries more than the 99 % tier's.
    capacities = {}
    for attainment in (0.99, 0.90):
        t = tier(attainment)
        obs = observe(t, 10.0, current=1, prompt=5000.0, output=50.0)
        capacities[attainment] = (
            planner.plan(tiers=[t], observations=observations(obs), model=h100, now_s=1000.0)
            .decisions[t.key]
            .capacity_rps_per_replica
        )
    assert capacities[0.90] > capacities[0.99]


def test_the_miss_budget_is_split_equally_unless_configured_by_need(
    h100: latency.LatencyModel,
) -> None:
    # 6,000-token prompts with a 1 s TTFT and a 200 ms TPOT at a 95 % target: TTFT binds
    # and TPOT misses next to nothing. The default holds each latency at p97.5; split by
    # need (`PlannerConfig.tpot_miss_share` (0, 0.5)), TTFT takes what TPOT leaves, nearly
    # all of the 5 %, and one replica is planned to carry more.
    tier = replace(
        make_tier("long", 1.0, 0.2), slo=Slo(ttft_s=1.0, tpot_s=0.2, attainment_frac=0.95)
    )
    obs = observations(observe(tier, 4.0, current=2, prompt=6000, output=300))

    def capacity_rps(config: planner.PlannerConfig | None) -> float:
        plan = planner.plan(tiers=[tier], observations=obs, model=h100, now_s=1000.0, config=config)
        return plan.decisions[tier.key].capacity_rps_per_replica

    equal = capacity_rps(None)
    shape = latency.WorkloadShape(6000, 300)
    assert equal == pytest.approx(
        capacity.max_rate_rps(h100, latency.SloTarget(1.0, 0.2, 97.5), shape), rel=1e-9
    )
    by_need = capacity_rps(planner.PlannerConfig(tpot_miss_share=(0.0, 0.5)))
    assert by_need > 1.2 * equal


def _handover(
    h100: latency.LatencyModel, high_ttft_s: float | None
) -> tuple[TierDecision, TierDecision, int]:
    """Under a 3-GPU budget, `high` (priority 40) needed 2 replicas a minute ago and 1 now,
    `low` (priority 20) the reverse; `high` is now seen at `high_ttft_s` against its 1 s
    TTFT. Returns the decisions of `high` and `low` and the GPUs planned."""
    high = make_tier("high", 1.0, 0.1, priority=40, min_replicas=1)
    low = make_tier("low", 1.0, 0.1, priority=20, min_replicas=1)
    budget = GpuBudget(total_gpus=3)
    slo = latency.SloTarget(1.0, 0.1, planning_percentile(high))
    one = capacity.max_rate_rps(h100, slo, latency.WorkloadShape(1000, 200))
    busy, calm = 1.5 * one, 0.5 * one
    first = planner.plan(
        tiers=[high, low],
        observations=observations(
            observe(high, busy, current=2, now_s=1000.0),
            observe(low, calm, current=1, now_s=1000.0),
        ),
        model=h100,
        now_s=1000.0,
        budget=budget,
    )
    assert first.decisions[high.key].desired_replicas == 2
    assert first.decisions[low.key].desired_replicas == 1
    second = planner.plan(
        tiers=[high, low],
        observations=observations(
            observe(high, calm, current=2, now_s=1060.0, ttft_s=high_ttft_s),
            observe(low, busy, current=1, now_s=1060.0),
        ),
        model=h100,
        state=first.state,
        now_s=1060.0,
        budget=budget,
    )
    return second.decisions[high.key], second.decisions[low.key], second.total_gpus


def test_a_budget_does_not_hand_a_breaching_higher_prioritys_replica_to_a_lower_one(
    h100: latency.LatencyModel,
) -> None:
    """`high`, observed at 3 s against its 1 s TTFT, keeps the Ready replica its scale-down
    window holds; `low`'s new replica waits (gen-s7-019: a priority-40 tier at 92 % of its
    95 % lost a Ready replica to a priority-20 tier's new one, 300 s to load, and took it
    back a minute later, 9 times in 30 minutes: 83.4 % where `isolated` held 99.0 %)."""
    kept, waiting, gpus = _handover(h100, high_ttft_s=3.0)
    assert kept.slo_breached and kept.desired_replicas == 2
    assert waiting.desired_replicas == 1 and waiting.reason is Reason.BUDGET_LIMITED
    assert "while high, breaching its SLO, holds replicas" in waiting.message
    assert gpus <= 3


def test_a_budget_hands_a_healthy_higher_prioritys_held_replica_to_a_lower_one(
    h100: latency.LatencyModel,
) -> None:
    """Meeting its SLO, `high`'s held replica goes to `low` at once: waiting out the window
    after every burst starved gen-s2027-018's standard tier (86.2 -> 67.8 % of 90 %)."""
    trimmed, grown, gpus = _handover(h100, high_ttft_s=0.5)
    assert trimmed.slo_breached is False and trimmed.desired_replicas == 1
    assert trimmed.reason is Reason.BUDGET_LIMITED
    assert grown.desired_replicas == 2 and gpus == 3


def test_a_step_a_higher_priority_shows_is_present_demand_under_a_budget(
    h100: latency.LatencyModel,
) -> None:
    # Found at S2's tier-mix inversion (scenarios/s2-polyserve-burst.yaml, 20 GPUs): the
    # 30 ms tier (priority 3) stepped up while the 100 ms tier (priority 1) fell; the
    # 60 s rate windows still read mostly the old rates, so present demand put the lower
    # priority first and the 30 ms tier was cut 5 -> 3 replicas while the 100 ms tier
    # kept 5 (the 30 ms tier met 91.4 % of requests, 98.2 % after this change). Fails on the
    # previous planner: hi keeps 2 replicas (11 % unserved), lo keeps 2.
    hi = make_tier("hi", 0.5, 0.03, priority=3, min_replicas=1, cold_start_s=0.0)
    lo = make_tier("lo", 1.0, 0.1, priority=1, min_replicas=1, cold_start_s=0.0, borrow=False)
    now_s, step_at_s = 940.0, 925.0

    def window_rps(before: float, after: float, t: float) -> float:
        """The 60 s window rate around a step at `step_at_s` (exact for a step)."""
        return before + (after - before) * min(max(t - step_at_s, 0.0) / 60.0, 1.0)

    def seen(tier: Tier, before: float, after: float, current: int) -> TierObservation:
        history = tuple((t, window_rps(before, after, t)) for t in range(700, 941, 15))
        obs = observe(tier, history[-1][1], now_s=now_s, current=current)
        return replace(obs, rate_history_rps=history)

    obs = observations(seen(hi, 10.0, 40.0, current=2), seen(lo, 40.0, 10.0, current=3))
    result = planner.plan(
        tiers=[hi, lo], observations=obs, model=h100, now_s=now_s, budget=GpuBudget(total_gpus=4)
    )
    high, low = result.decisions[hi.key], result.decisions[lo.key]
    assert "(a step: the newest 15s of the 60s rate window)" in high.message
    assert high.desired_replicas == high.needed_replicas == 3
    assert high.unserved_rate_rps == 0.0
    assert low.desired_replicas == 1 and low.reason is Reason.BUDGET_LIMITED


def _lender_window(ide_prompt: float, chat_prompt: float) -> Observations:
    """IDE's 4 Ready replicas lend while chat's 3 replicas all load."""
    return observations(
        observe(IDE, 1.0, current=4, ready=4, prompt=ide_prompt),
        observe(CHAT, 3.0, current=3, ready=0, prompt=chat_prompt),
    )


def _lending(
    h100: latency.LatencyModel,
    prompts: tuple[float, float],
    state: PlannerState | None = None,
    cfg: planner.PlannerConfig | None = None,
) -> Plan:
    """A decision on `_lender_window(*prompts)`: at 1000 s without `state`, 15 s later
    with it."""
    return planner.plan(
        tiers=[IDE, CHAT],
        observations=_lender_window(*prompts),
        model=h100,
        state=state,
        now_s=1000.0 if state is None else 1015.0,
        config=cfg,
    )


def test_a_lender_plans_its_own_requests_at_the_lengths_it_learned_before_it_borrowed(
    h100: latency.LatencyModel,
) -> None:
    # Chat's replicas load, so its 1,500-token prompts spill onto IDE's pool; vLLM's
    # histograms then mix them into IDE's own 300-token ones. Planned at the mixed lengths
    # IDE's own requests looked heavier, its capacity fell and (gen-s20261130-017, under a
    # budget) it took the borrower's GPU in every other decision.
    first = _lending(h100, (300.0, 1500.0))
    assert first.decisions[IDE.key].spill_in_rps > 0.0

    def second(cfg: planner.PlannerConfig) -> Plan:
        # IDE's pool reads its own requests and chat's mixed.
        return _lending(h100, (1200.0, 1500.0), first.state, cfg)

    held = second(planner.PlannerConfig())
    assert held.state.lengths_by_tier[IDE.key] == first.state.lengths_by_tier[IDE.key]
    own = first.decisions[IDE.key].capacity_rps_per_replica
    assert held.decisions[IDE.key].capacity_rps_per_replica == own
    mixed = second(planner.PlannerConfig(hold_lender_lengths=False))
    assert mixed.state.lengths_by_tier[IDE.key][0] > 300.0
    assert mixed.decisions[IDE.key].capacity_rps_per_replica < 0.9 * own


def test_a_lender_borrowing_requests_of_its_own_lengths_keeps_learning_them(
    h100: latency.LatencyModel,
) -> None:
    # Mixing in requests of the lender's own lengths counts nothing twice, while holding
    # froze the estimate of a pool's first windows (S2, seed 0: its 30 ms tier 98.3 ->
    # 95.1 % when every borrower held its lender's lengths).
    first = _lending(h100, (300.0, 300.0))
    assert first.decisions[IDE.key].spill_in_rps > 0.0
    second = _lending(h100, (330.0, 330.0), first.state)
    assert second.state.lengths_by_tier[IDE.key][0] > 300.0


def test_a_given_own_capacity_sizes_the_pool_instead_of_the_model(
    h100: latency.LatencyModel,
) -> None:
    """`PlannerConfig.own_capacity_rps_by_tier` (the simulator's `engine-capacity`
    diagnostic) replaces the model's capacity of the named tiers' own pools, and only
    theirs; a value <= 0 keeps the model's."""
    obs = observations(observe(IDE, 30.0, current=1), observe(CHAT, 30.0, current=1))

    def decide(given: dict[str, float]) -> Plan:
        cfg = planner.PlannerConfig(own_capacity_rps_by_tier=given)
        return planner.plan(
            tiers=[IDE, CHAT], observations=obs, model=h100, now_s=1000.0, config=cfg
        )

    modelled = decide({})
    given = decide({IDE.key: 2.0, CHAT.key: 0.0})
    assert given.decisions[IDE.key].capacity_rps_per_replica == pytest.approx(2.0)
    assert given.decisions[IDE.key].desired_replicas > modelled.decisions[IDE.key].desired_replicas
    assert given.decisions[CHAT.key].capacity_rps_per_replica == pytest.approx(
        modelled.decisions[CHAT.key].capacity_rps_per_replica
    )
