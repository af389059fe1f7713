"""Files change only through validated, atomic renames, and only when their content does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tierscale.adapters.envoy import file_writer, routing, validation, xds


def _layout(root: Path) -> xds.XdsLayout:
    return xds.XdsLayout(str(root / "lds"), str(root / "cds"), str(root / "rds"))


def _weights_in(rds_file: Path) -> list[dict[str, object]]:
    route_config = yaml.safe_load(rds_file.read_text())["resources"][0]
    clusters: list[dict[str, object]] = route_config["virtual_hosts"][0]["routes"][1]["route"][
        "weighted_clusters"
    ]["clusters"]
    return clusters


def test_apply_writes_one_file_per_xds_directory(
    tmp_path: Path, two_pool_table: Callable[[int], routing.RoutingTable], envoy_binary: str
) -> None:
    layout = _layout(tmp_path)
    file_writer.FileRoutingWriter(layout, xds.ListenerSettings(), envoy_binary).apply(
        two_pool_table(600)
    )
    assert Path(layout.lds_path).exists()
    assert Path(layout.cds_path).exists()
    assert _weights_in(Path(layout.rds_path)) == [
        {"name": "ns_a", "weight": 600},
        {"name": "ns_b", "weight": 400},
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["lds", "cds", "rds", "lds.yaml", "cds.yaml", "rds.yaml"]
    ), "no temp files are left behind"


def test_a_weight_change_replaces_only_the_route_file(
    tmp_path: Path, two_pool_table: Callable[[int], routing.RoutingTable], envoy_binary: str
) -> None:
    layout = _layout(tmp_path)
    writer = file_writer.FileRoutingWriter(layout, xds.ListenerSettings(), envoy_binary)
    writer.apply(two_pool_table(600))
    inodes = {p: Path(p).stat().st_ino for p in (layout.lds_path, layout.cds_path, layout.rds_path)}
    writer.apply(two_pool_table(200))
    assert Path(layout.lds_path).stat().st_ino == inodes[layout.lds_path]
    assert Path(layout.cds_path).stat().st_ino == inodes[layout.cds_path]
    assert Path(layout.rds_path).stat().st_ino != inodes[layout.rds_path]
    assert _weights_in(Path(layout.rds_path))[0] == {"name": "ns_a", "weight": 200}


def test_a_config_envoy_rejects_is_never_written(
    tmp_path: Path, two_pool_table: Callable[[int], routing.RoutingTable], envoy_binary: str
) -> None:
    layout = _layout(tmp_path)
    file_writer.FileRoutingWriter(layout, xds.ListenerSettings(), envoy_binary).apply(
        two_pool_table(600)
    )
    before = {p: Path(p).read_text() for p in (layout.lds_path, layout.cds_path, layout.rds_path)}
    broken = file_writer.FileRoutingWriter(layout, xds.ListenerSettings(port=70000), envoy_binary)
    with pytest.raises(validation.EnvoyConfigRejected, match="PortValue"):
        broken.apply(two_pool_table(100))
    assert {p: Path(p).read_text() for p in before} == before
