"""With an RTDS directory, admission caps are runtime overrides: a cap change rewrites the
runtime layer only, never a cluster (a cluster update resets the streams on its pool)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import yaml

from tierscale.adapters.envoy import routing, validation, xds

LAYOUT = xds.XdsLayout("/x/lds", "/x/cds", "/x/rds", rtds_dir="/x/rtds")


def _with_cap(table: routing.RoutingTable, max_requests: int) -> routing.RoutingTable:
    pools = tuple(
        replace(p, caps=routing.CircuitBreakerCaps(max_requests, 2)) if p.caps else p
        for p in table.pools
    )
    return replace(table, pools=pools)


def test_caps_move_to_the_runtime_layer_and_a_cap_change_keeps_the_clusters(
    two_pool_table: Callable[[int], routing.RoutingTable],
) -> None:
    settings = xds.ListenerSettings()
    before = xds.render(_with_cap(two_pool_table(500), 8), LAYOUT, settings).files()
    after = xds.render(_with_cap(two_pool_table(500), 13), LAYOUT, settings).files()
    assert before[xds.CDS_FILE] == after[xds.CDS_FILE]
    assert before[xds.RTDS_FILE] != after[xds.RTDS_FILE]
    runtime = yaml.safe_load(after[xds.RTDS_FILE])["resources"][0]
    assert runtime["name"] == xds.RUNTIME_LAYER
    assert runtime["layer"] == {
        "circuit_breakers.ns_a.default.max_pending_requests": 2,
        "circuit_breakers.ns_a.default.max_requests": 13,
    }
    cds = yaml.safe_load(after[xds.CDS_FILE])["resources"]
    assert all("max_requests" not in c["circuit_breakers"]["thresholds"][0] for c in cds)


def test_without_an_rtds_directory_caps_stay_in_the_clusters(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    files = xds.render(two_pool_table(500), layout, xds.ListenerSettings()).files()
    assert xds.RTDS_FILE not in files
    cds = yaml.safe_load(files[xds.CDS_FILE])["resources"]
    assert cds[0]["circuit_breakers"]["thresholds"][0]["max_requests"] == 8


def test_the_bootstrap_reads_the_runtime_layer_and_envoy_accepts_the_caps(
    two_pool_table: Callable[[int], routing.RoutingTable], envoy_binary: str
) -> None:
    bootstrap = xds.render_bootstrap(LAYOUT, "127.0.0.1", 0)
    (layer,) = bootstrap["layered_runtime"]["layers"]
    assert layer["rtds_layer"]["rtds_config"]["path_config_source"]["path"] == "/x/rtds/rtds.yaml"
    validation.validate(
        xds.render(two_pool_table(500), LAYOUT, xds.ListenerSettings()), envoy_binary
    )
