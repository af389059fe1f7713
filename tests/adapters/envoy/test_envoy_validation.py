"""The real Envoy binary accepts what we render and rejects what it would not serve."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tierscale.adapters.envoy import routing, validation, xds


def _resources(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> xds.XdsResources:
    return xds.render(two_pool_table(600), layout, xds.ListenerSettings())


def test_a_rendered_table_is_accepted(
    two_pool_table: Callable[[int], routing.RoutingTable],
    layout: xds.XdsLayout,
    envoy_binary: str,
) -> None:
    validation.validate(_resources(two_pool_table, layout), envoy_binary)


def test_a_route_to_an_unknown_cluster_is_rejected(
    two_pool_table: Callable[[int], routing.RoutingTable],
    layout: xds.XdsLayout,
    envoy_binary: str,
) -> None:
    good = _resources(two_pool_table, layout)
    route_config = dict(good.route_config)
    vhost = dict(route_config["virtual_hosts"][0])
    route = dict(vhost["routes"][0])
    route["route"] = {
        **route["route"],
        "weighted_clusters": {"clusters": [{"name": "nope", "weight": 1}]},
    }
    vhost["routes"] = [route]
    route_config["virtual_hosts"] = [vhost]
    with pytest.raises(validation.EnvoyConfigRejected, match="unknown weighted cluster 'nope'"):
        validation.validate(dataclasses.replace(good, route_config=route_config), envoy_binary)


def test_a_malformed_route_is_rejected(
    two_pool_table: Callable[[int], routing.RoutingTable],
    layout: xds.XdsLayout,
    envoy_binary: str,
) -> None:
    good = _resources(two_pool_table, layout)
    broken = {
        **good.route_config,
        "virtual_hosts": [
            {"name": "v", "domains": ["*"], "routes": [{"match": {}, "route": {"cluster": "ns_a"}}]}
        ],
    }
    with pytest.raises(validation.EnvoyConfigRejected, match="Proto constraint validation failed"):
        validation.validate(dataclasses.replace(good, route_config=broken), envoy_binary)


def test_an_unknown_field_is_rejected(
    two_pool_table: Callable[[int], routing.RoutingTable],
    layout: xds.XdsLayout,
    envoy_binary: str,
) -> None:
    good = _resources(two_pool_table, layout)
    broken = {**good.route_config, "weigths": 1}
    with pytest.raises(validation.EnvoyConfigRejected, match="no such field: 'weigths'"):
        validation.validate(dataclasses.replace(good, route_config=broken), envoy_binary)
