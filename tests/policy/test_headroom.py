"""Standing headroom (`spec.scaling.headroom`): capacity held above the forecast, a margin."""

from __future__ import annotations

import math
from dataclasses import replace

from tests.policy.builders import make_tier, observations, observe
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import planner
from tierscale_predictor import latency

CHAT = make_tier("chat", 0.5, 0.05, priority=50, min_replicas=1)
BATCH = make_tier("batch", 5.0, 0.1, priority=0, min_replicas=1, lend=False, borrow=False)


def with_headroom(tier: Tier, headroom: float) -> Tier:
    return replace(tier, scaling=replace(tier.scaling, headroom=headroom))


def test_headroom_holds_capacity_for_that_multiple_of_the_forecast(
    h100: latency.LatencyModel,
) -> None:
    rate_rps = 20.0
    plain = planner.plan(
        tiers=[CHAT],
        observations=observations(observe(CHAT, rate_rps, current=1)),
        model=h100,
        now_s=1000.0,
    ).decisions[CHAT.key]
    capacity_rps = plain.capacity_rps_per_replica
    assert plain.desired_replicas == math.ceil(rate_rps / capacity_rps)
    tier = with_headroom(CHAT, 1.5)
    held = planner.plan(
        tiers=[tier],
        observations=observations(observe(tier, rate_rps, current=1)),
        model=h100,
        now_s=1000.0,
    ).decisions[CHAT.key]
    assert held.desired_replicas == math.ceil(1.5 * rate_rps / capacity_rps)
    assert held.desired_replicas > plain.desired_replicas
    assert "forecast 20.00 req/s + 10.00 req/s of headroom (x1.5, spec.scaling.headroom)" in (
        held.message
    )


def test_under_a_binding_budget_headroom_yields_to_present_demand(
    h100: latency.LatencyModel,
) -> None:
    # The higher priority's headroom is a margin: a lower priority's requests of today
    # come first (`target.margins_last`), so the budget the two plain needs fit in holds
    # both plain needs, and only what is left goes to the headroom.
    chat_rps, batch_rps = 20.0, 30.0
    plain = planner.plan(
        tiers=[CHAT, BATCH],
        observations=observations(
            observe(CHAT, chat_rps, current=1), observe(BATCH, batch_rps, current=1)
        ),
        model=h100,
        now_s=1000.0,
    )
    needs = {k: d.desired_replicas for k, d in plain.decisions.items()}
    tier = with_headroom(CHAT, 2.0)
    result = planner.plan(
        tiers=[tier, BATCH],
        observations=observations(
            observe(tier, chat_rps, current=1), observe(BATCH, batch_rps, current=1)
        ),
        model=h100,
        now_s=1000.0,
        budget=GpuBudget(total_gpus=sum(needs.values())),
    )
    assert result.budget_limited
    assert result.decisions[BATCH.key].desired_replicas == needs[BATCH.key]
    assert result.decisions[CHAT.key].desired_replicas == needs[CHAT.key]
