"""A routing table that Envoy would reject, or that routes nowhere, cannot be built."""

from __future__ import annotations

import pytest

from tierscale.adapters.envoy import routing

POOL = routing.PoolCluster("ns_a", routing.StaticEndpoints(()))


def _tier(weights: dict[str, int], name: str = "ns_gold", value: str = "gold") -> routing.TierRoute:
    return routing.TierRoute(name, "x-slo-tier", value, weights)


def test_a_route_to_an_unknown_pool_is_refused() -> None:
    with pytest.raises(routing.InvalidRoutingTable, match="unknown pool 'ns_b'"):
        routing.RoutingTable(tiers=(_tier({"ns_b": 1000}),), pools=(POOL,))


def test_a_tier_without_weights_is_refused() -> None:
    with pytest.raises(routing.InvalidRoutingTable, match="routes to no pool"):
        routing.RoutingTable(tiers=(_tier({}),), pools=(POOL,))


def test_a_zero_weight_is_refused() -> None:
    with pytest.raises(routing.InvalidRoutingTable, match="weight 0"):
        routing.RoutingTable(tiers=(_tier({"ns_a": 0}),), pools=(POOL,))


def test_two_tiers_on_the_same_header_value_are_refused() -> None:
    with pytest.raises(routing.InvalidRoutingTable, match="duplicate tier header"):
        routing.RoutingTable(
            tiers=(_tier({"ns_a": 1000}), _tier({"ns_a": 1000}, name="ns_other")), pools=(POOL,)
        )


def test_a_name_that_would_break_stat_tags_is_refused() -> None:
    with pytest.raises(routing.InvalidRoutingTable, match="not stat-safe"):
        routing.RoutingTable(tiers=(_tier({"ns_a": 1000}, name="ns/gold"),), pools=(POOL,))


def test_an_unknown_default_tier_is_refused() -> None:
    with pytest.raises(routing.InvalidRoutingTable, match="default tier"):
        routing.RoutingTable(tiers=(_tier({"ns_a": 1000}),), pools=(POOL,), default_tier="x")
