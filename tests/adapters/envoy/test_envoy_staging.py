"""New clusters go live before the routes that name them, on files and on a ConfigMap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tierscale.adapters.envoy import configmap_writer, fake, file_writer, routing, staging, xds

SETTLE_S = 5.0


class _Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _with_pool_c(table: routing.RoutingTable) -> routing.RoutingTable:
    pool_c = routing.PoolCluster("ns_c", routing.StaticEndpoints(()))
    gold = routing.TierRoute("ns_gold", "x-slo-tier", "gold", {"ns_c": 1000})
    return routing.RoutingTable(
        tiers=(gold, *table.tiers[1:]), pools=(*table.pools, pool_c), default_tier="ns_bronze"
    )


def _names(cds_file: str) -> list[str]:
    return [c["name"] for c in yaml.safe_load(cds_file)["resources"]]


def test_interim_clusters_serve_both_the_live_and_the_new_routes(
    two_pool_table: Callable[[int], routing.RoutingTable], layout: xds.XdsLayout
) -> None:
    settings = xds.ListenerSettings()
    live = xds.render(two_pool_table(500), layout, settings).files()[xds.CDS_FILE]
    desired = xds.render(_with_pool_c(two_pool_table(500)), layout, settings)
    assert staging.added_clusters(live, desired) == ["ns_c"]
    assert _names(staging.interim_cds_file(live, desired)) == ["ns_a", "ns_b", "ns_c"]
    assert staging.added_clusters(staging.interim_cds_file(live, desired), desired) == []


def test_file_writer_publishes_new_clusters_then_routes_after_settling(
    tmp_path: Path, two_pool_table: Callable[[int], routing.RoutingTable], envoy_binary: str
) -> None:
    layout = xds.XdsLayout(str(tmp_path / "lds"), str(tmp_path / "cds"), str(tmp_path / "rds"))
    clock = _Clock()
    writer = file_writer.FileRoutingWriter(
        layout, xds.ListenerSettings(), envoy_binary, settle_s=SETTLE_S, clock=clock
    )
    assert writer.apply(two_pool_table(500)) is routing.Publication.LIVE, "nothing to protect"
    routes_before = Path(layout.rds_path).read_text()

    desired = _with_pool_c(two_pool_table(500))
    assert writer.apply(desired) is routing.Publication.STAGED
    assert _names(Path(layout.cds_path).read_text()) == ["ns_a", "ns_b", "ns_c"]
    assert Path(layout.rds_path).read_text() == routes_before

    clock.now_s += SETTLE_S - 0.1
    assert writer.apply(desired) is routing.Publication.STAGED
    assert Path(layout.rds_path).read_text() == routes_before

    clock.now_s += 0.2
    assert writer.apply(desired) is routing.Publication.LIVE
    assert "ns_c" in Path(layout.rds_path).read_text()


def test_configmap_writer_keeps_the_staging_time_on_the_configmap(
    two_pool_table: Callable[[int], routing.RoutingTable],
    layout: xds.XdsLayout,
    envoy_binary: str,
) -> None:
    api = fake.InMemoryConfigMaps()
    api.create("ns", "envoy")
    clock = _Clock()

    def writer() -> configmap_writer.ConfigMapRoutingWriter:
        """A fresh writer each time: what an operator restart would get."""
        return configmap_writer.ConfigMapRoutingWriter(
            api, "ns", "envoy", layout, xds.ListenerSettings(), envoy_binary, SETTLE_S, clock
        )

    assert writer().apply(two_pool_table(500)) is routing.Publication.LIVE
    config_map = api.read_namespaced_config_map("envoy", "ns")
    routes_before = config_map.data[xds.RDS_FILE]

    desired = _with_pool_c(two_pool_table(500))
    assert writer().apply(desired) is routing.Publication.STAGED
    assert _names(config_map.data[xds.CDS_FILE]) == ["ns_a", "ns_b", "ns_c"]
    assert config_map.data[xds.RDS_FILE] == routes_before
    assert config_map.metadata.annotations[configmap_writer.STAGED_AT_ANNOTATION] == "1000.000"

    clock.now_s += 1.0
    assert writer().apply(desired) is routing.Publication.STAGED
    clock.now_s += SETTLE_S
    assert writer().apply(desired) is routing.Publication.LIVE
    assert _names(config_map.data[xds.CDS_FILE]) == ["ns_a", "ns_b", "ns_c"]
    assert config_map.data[xds.RDS_FILE] != routes_before
    assert configmap_writer.STAGED_AT_ANNOTATION not in config_map.metadata.annotations


def test_configmap_writer_publishes_weight_changes_at_once(
    two_pool_table: Callable[[int], routing.RoutingTable],
    layout: xds.XdsLayout,
    envoy_binary: str,
) -> None:
    api = fake.InMemoryConfigMaps()
    api.create("ns", "envoy")
    writer = configmap_writer.ConfigMapRoutingWriter(
        api, "ns", "envoy", layout, xds.ListenerSettings(), envoy_binary, SETTLE_S, _Clock()
    )
    writer.apply(two_pool_table(500))
    assert writer.apply(two_pool_table(100)) is routing.Publication.LIVE
    assert len(api.patches) == 2
