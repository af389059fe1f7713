"""A model group's RoutingIntent becomes routes and clusters without losing or inventing
traffic."""

from __future__ import annotations

import pytest

from tierscale.adapters.envoy import intent_routing, routing
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.loop.actions import AdmissionCap, RoutingIntent, TierRouteIntent

GOLD = Tier("gold", "prod", "llama", Slo(0.5, 0.05), Pool("vllm-gold"), routing_value="gold")
BRONZE = Tier("bronze", "prod", "llama", Slo(5.0, 0.2), Pool("vllm-bronze"))
EDS = intent_routing.eds_endpoints("/etc/envoy/eds")


def _route(tier: Tier, weights: dict[str, float]) -> TierRouteIntent:
    return TierRouteIntent(
        tier.key, f"prod_{tier.name}", "x-slo-tier", tier.routing_value or tier.name, weights
    )


def test_spillover_splits_the_looser_tier_over_both_pools_by_integer_weight() -> None:
    intent = RoutingIntent(
        routes=(
            _route(GOLD, {"prod/vllm-gold": 1.0}),
            _route(BRONZE, {"prod/vllm-bronze": 0.75, "prod/vllm-gold": 0.25}),
        ),
        caps_by_pool={"prod/vllm-gold": AdmissionCap(19, 5)},
        default_tier_key=BRONZE.key,
    )
    owned = intent_routing.group_routing(intent, [GOLD, BRONZE], EDS)
    gold, bronze = owned.routes
    assert (gold.name, gold.header_value, dict(gold.weights_by_cluster)) == (
        "prod_gold",
        "gold",
        {"prod_vllm-gold": 1000},
    )
    assert dict(bronze.weights_by_cluster) == {"prod_vllm-bronze": 750, "prod_vllm-gold": 250}
    assert owned.default_route == "prod_bronze"
    pools = {p.name: p for p in owned.pools}
    assert pools["prod_vllm-gold"].caps == routing.CircuitBreakerCaps(20, 5), "rounded up"
    assert pools["prod_vllm-bronze"].caps is None
    assert pools["prod_vllm-gold"].endpoints == routing.EdsFile(
        "/etc/envoy/eds/prod_vllm-gold.yaml", "/etc/envoy/eds"
    )


def test_every_tiers_own_pool_gets_a_cluster_even_without_traffic() -> None:
    intent = RoutingIntent(routes=(_route(BRONZE, {"prod/vllm-gold": 1.0}),))
    owned = intent_routing.group_routing(intent, [GOLD, BRONZE], EDS)
    assert [p.name for p in owned.pools] == ["prod_vllm-bronze", "prod_vllm-gold"]


def test_a_route_without_any_share_is_refused() -> None:
    intent = RoutingIntent(routes=(_route(GOLD, {"prod/vllm-gold": 0.0}),))
    with pytest.raises(routing.InvalidRoutingTable, match="routes to no pool"):
        intent_routing.group_routing(intent, [GOLD], EDS)


def test_dns_endpoints_name_each_pools_headless_service() -> None:
    policy = intent_routing.endpoint_policy("dns:{deployment}.{namespace}.svc:8000")
    assert policy("prod", "vllm-gold") == routing.DnsService(
        routing.Endpoint("vllm-gold.prod.svc", 8000)
    )


@pytest.mark.parametrize("spec", ["dns:no-port", "eds:relative/dir", "file:/x", ""])
def test_a_bad_endpoint_setting_says_what_is_expected(spec: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        intent_routing.endpoint_policy(spec)


def test_caps_round_up_to_a_coarse_grid_so_small_moves_do_not_rewrite_clusters() -> None:
    assert [intent_routing.grid_cap(v) for v in (0, 1, 8, 9, 10, 11, 19, 20, 100)] == [
        1,
        1,
        8,
        10,
        10,
        13,
        20,
        25,
        117,
    ]
    for value in range(1, 2000):
        cap = intent_routing.grid_cap(value)
        assert value <= cap <= max(8, value * 1.25 + 1)
