"""A Plan becomes routes and pool caps without losing or inventing traffic."""

from __future__ import annotations

import pytest

from tierscale.adapters.envoy import plan_routing, routing
from tierscale.domain.plans import Plan, PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Slo, Tier

GOLD = Tier("gold", "prod", "llama", Slo(0.5, 0.05), Pool("vllm-gold"), routing_value="gold")
BRONZE = Tier("bronze", "prod", "llama", Slo(5.0, 0.2), Pool("vllm-bronze"))


def _decision(tier: Tier, weights: dict[str, float], cap_rps: float | None) -> TierDecision:
    return TierDecision(
        tier_key=tier.key,
        desired_replicas=1,
        weights_by_pool=weights,
        reason=Reason.STEADY,
        message="",
        admission_cap_rps=cap_rps,
    )


def _plan(*decisions: TierDecision) -> Plan:
    return Plan(
        decided_at_s=0.0,
        decisions={d.tier_key: d for d in decisions},
        state=PlannerState(),
        total_gpus=2,
    )


def test_spillover_splits_the_looser_tier_over_both_pools_by_integer_weight() -> None:
    plan = _plan(
        _decision(GOLD, {GOLD.key: 1.0}, cap_rps=10.0),
        _decision(BRONZE, {BRONZE.key: 0.75, GOLD.key: 0.25}, cap_rps=None),
    )
    endpoints = {"prod/vllm-gold": routing.StaticEndpoints((routing.Endpoint("10.0.0.1", 8000),))}
    table = plan_routing.from_plan(
        plan, [GOLD, BRONZE], endpoints, request_duration_s=2.0, default_tier_key=BRONZE.key
    )
    gold, bronze = table.tiers
    assert (gold.name, gold.header_value, dict(gold.weights_by_cluster)) == (
        "prod_gold",
        "gold",
        {"prod_vllm-gold": 1000},
    )
    assert bronze.header_value == "bronze", "an empty routing value falls back to the tier name"
    assert dict(bronze.weights_by_cluster) == {"prod_vllm-bronze": 750, "prod_vllm-gold": 250}
    assert table.default_tier == "prod_bronze"
    pools = {p.name: p for p in table.pools}
    assert pools["prod_vllm-gold"].endpoints == endpoints["prod/vllm-gold"]
    assert pools["prod_vllm-bronze"].endpoints == routing.StaticEndpoints(())
    assert pools["prod_vllm-gold"].caps == routing.CircuitBreakerCaps(20, 5)
    assert pools["prod_vllm-bronze"].caps is None


def test_a_tier_without_a_decision_or_share_still_routes_to_its_own_pool() -> None:
    table = plan_routing.from_plan(
        _plan(_decision(GOLD, {}, None)), [GOLD, BRONZE], {}, request_duration_s=1.0
    )
    assert [dict(t.weights_by_cluster) for t in table.tiers] == [
        {"prod_vllm-gold": 1000},
        {"prod_vllm-bronze": 1000},
    ]


def test_a_share_on_an_unknown_pool_owner_is_refused() -> None:
    plan = _plan(_decision(GOLD, {"prod/ghost": 1.0}, None))
    with pytest.raises(routing.InvalidRoutingTable, match="unknown pool owner 'prod/ghost'"):
        plan_routing.from_plan(plan, [GOLD], {}, request_duration_s=1.0)


@pytest.mark.parametrize(
    ("cap_rps", "duration_s", "expected"),
    [(0.0, 2.0, routing.CircuitBreakerCaps(1, 1)), (3.2, 1.5, routing.CircuitBreakerCaps(5, 2))],
)
def test_admission_caps_follow_littles_law_with_at_least_one_request(
    cap_rps: float, duration_s: float, expected: routing.CircuitBreakerCaps
) -> None:
    assert plan_routing.caps_for(cap_rps, duration_s) == expected
