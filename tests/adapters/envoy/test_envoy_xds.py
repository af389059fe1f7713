"""Rendered resources carry the properties LLM traffic needs (see xds module docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from tierscale.adapters.envoy import routing, xds


def _render(table: routing.RoutingTable, layout: xds.XdsLayout) -> xds.XdsResources:
    return xds.render(table, layout, xds.ListenerSettings(port=18080, idle_timeout_s=120))


def _routes(resources: xds.XdsResources) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = resources.route_config["virtual_hosts"][0]["routes"]
    return routes


def test_each_tier_matches_its_header_and_splits_by_integer_weight(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    bronze = _routes(_render(two_pool_table(700), layout))[1]
    assert bronze["match"]["headers"] == [
        {"name": "x-slo-tier", "string_match": {"exact": "bronze"}}
    ]
    assert bronze["route"]["weighted_clusters"]["clusters"] == [
        {"name": "ns_a", "weight": 700},
        {"name": "ns_b", "weight": 300},
    ]


def test_a_pool_with_no_share_is_left_out_of_the_split(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    bronze = _routes(_render(two_pool_table(1000), layout))[1]
    assert bronze["route"]["weighted_clusters"]["clusters"] == [{"name": "ns_a", "weight": 1000}]


def test_routes_are_streaming_safe_and_retry_only_before_work_started(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    for route in _routes(_render(two_pool_table(500), layout)):
        action = route["route"]
        assert action["timeout"] == "0s"
        assert action["idle_timeout"] == "120s"
        retry_on = set(action["retry_policy"]["retry_on"].split(","))
        assert retry_on == {
            "connect-failure",
            "refused-stream",
            "reset-before-request",
            "retriable-status-codes",
        }
        assert action["retry_policy"]["retriable_status_codes"] == [503]


def test_each_tier_route_has_its_own_stat_prefix_and_the_default_reuses_it(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    routes = _routes(_render(two_pool_table(500), layout))
    assert [(r["name"], r["stat_prefix"]) for r in routes] == [
        ("ns_gold", "ns_gold"),
        ("ns_bronze", "ns_bronze"),
        ("ns_bronze-default", "ns_bronze"),
    ]
    assert "headers" not in routes[-1]["match"]


def test_route_config_validates_clusters(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    assert _render(two_pool_table(500), layout).route_config["validate_clusters"] is True


def test_pool_caps_become_circuit_breakers_that_report_remaining(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    a, b = _render(two_pool_table(500), layout).clusters
    (threshold_a,) = a["circuit_breakers"]["thresholds"]
    (threshold_b,) = b["circuit_breakers"]["thresholds"]
    assert (threshold_a["max_requests"], threshold_a["max_pending_requests"]) == (8, 2)
    assert threshold_a["track_remaining"] is True
    assert "max_requests" not in threshold_b, "no cap keeps Envoy's defaults"
    assert threshold_b["track_remaining"] is True
    assert threshold_b["retry_budget"]["budget_percent"] == {"value": 25.0}


def test_endpoint_sources_pick_the_cluster_type(layout: xds.XdsLayout) -> None:
    dns = routing.PoolCluster("d", routing.DnsService(routing.Endpoint("vllm.ns.svc", 8000)))
    eds = routing.PoolCluster("e", routing.EdsFile("/x/e.yaml", "/x"))
    static = routing.PoolCluster("s", routing.StaticEndpoints((routing.Endpoint("10.0.0.1", 80),)))
    rendered = {c["name"]: c for c in map(xds.render_cluster, (dns, eds, static))}
    assert rendered["d"]["type"] == "STRICT_DNS"
    assert rendered["e"]["type"] == "EDS"
    assert rendered["e"]["eds_cluster_config"]["eds_config"]["path_config_source"] == {
        "path": "/x/e.yaml",
        "watched_directory": {"path": "/x"},
    }
    assert rendered["s"]["type"] == "STATIC"


def test_files_are_discovery_responses_pointing_rds_at_its_own_directory(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    files = _render(two_pool_table(500), layout).files()
    assert set(files) == {"lds.yaml", "cds.yaml", "rds.yaml"}
    lds = yaml.safe_load(files["lds.yaml"])["resources"]
    assert lds[0]["@type"] == xds.LISTENER_TYPE
    hcm = lds[0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"]["config_source"]["path_config_source"] == {
        "path": "/etc/envoy/rds/rds.yaml",
        "watched_directory": {"path": "/etc/envoy/rds"},
    }
    cds = yaml.safe_load(files["cds.yaml"])["resources"]
    assert [c["@type"] for c in cds] == [xds.CLUSTER_TYPE, xds.CLUSTER_TYPE]


def test_validation_bootstrap_inlines_routes_and_replaces_eds_files(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    resources = _render(two_pool_table(500), layout)
    static = xds.render_validation_bootstrap(resources)["static_resources"]
    hcm = static["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert "rds" not in hcm
    assert hcm["route_config"] == resources.route_config
    assert [c["type"] for c in static["clusters"]] == ["STATIC", "STATIC"]
    assert "rds" in resources.listener["filter_chains"][0]["filters"][0]["typed_config"]
