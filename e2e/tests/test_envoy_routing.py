"""Live routing through the testbed's Envoy follows the ConfigMap, and only valid configs.

Upstreams here are tiny HTTP servers that answer with their own name, so the split is
measured with real requests through Envoy; `test_envoy_simvllm.py` routes to simulated pods.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter

import pytest
from tierscale_testbed.envoy import NameEchoUpstream, TestbedEnvoy, TierClient, wait_until

from tierscale.adapters.envoy import configmap_writer, routing, validation, xds

pytestmark = [pytest.mark.e2e]

SPLIT_MOVE_BOUND_S = 2.0
"""Issue 4: patching the routing ConfigMap moves the traffic split within 2 s."""


def _table(
    suffix: str, weights_by_upstream: dict[str, int], upstreams: dict[str, NameEchoUpstream]
) -> routing.RoutingTable:
    pools = tuple(
        routing.PoolCluster(f"pool-{name}-{suffix}", server.endpoints)
        for name, server in upstreams.items()
    )
    weights = {f"pool-{k}-{suffix}": w for k, w in weights_by_upstream.items() if w}
    return routing.RoutingTable(
        tiers=(routing.TierRoute(f"gold-{suffix}", "x-slo-tier", f"gold-{suffix}", weights),),
        pools=pools,
    )


def test_patching_the_configmap_moves_the_split_within_two_seconds(
    envoy: TestbedEnvoy, name_echo_upstreams: dict[str, NameEchoUpstream]
) -> None:
    suffix = secrets.token_hex(3)
    envoy.apply(_table(suffix, {"a": 1000}, name_echo_upstreams))
    with TierClient(envoy, f"gold-{suffix}") as client:
        assert client.split(50) == Counter({"a": 50})

        envoy.writer().apply(_table(suffix, {"a": 200, "b": 800}, name_echo_upstreams))
        patched_at = time.monotonic()
        while client.send() != "b":
            assert time.monotonic() - patched_at < SPLIT_MOVE_BOUND_S, "split did not move"
        moved_after_s = time.monotonic() - patched_at

        split = client.split(500)
        assert set(split) == {"a", "b"}
        # 80 % +- 7 points: 3.9 standard deviations of a 500-request binomial sample.
        assert abs(split["b"] / 500 - 0.8) < 0.07, split

        envoy.writer().apply(_table(suffix, {"b": 1000}, name_echo_upstreams))
        patched_at = time.monotonic()
        while client.split(20) != Counter({"b": 20}):
            assert time.monotonic() - patched_at < SPLIT_MOVE_BOUND_S, "split did not move"
    print(f"split moved {moved_after_s * 1000:.0f} ms after the ConfigMap patch")


def test_configmap_volume_swaps_only_the_mount_whose_content_changed(
    envoy: TestbedEnvoy, name_echo_upstreams: dict[str, NameEchoUpstream]
) -> None:
    suffix = secrets.token_hex(3)
    envoy.apply(_table(suffix, {"a": 500, "b": 500}, name_echo_upstreams))
    cds_data = (envoy.root / "cds" / "..data").readlink()
    rds_data = (envoy.root / "rds" / "..data").readlink()
    assert (envoy.root / "rds" / "rds.yaml").readlink().as_posix() == "..data/rds.yaml"

    envoy.apply(_table(suffix, {"a": 100, "b": 900}, name_echo_upstreams))

    assert (envoy.root / "cds" / "..data").readlink() == cds_data, "clusters did not change"
    assert (envoy.root / "rds" / "..data").readlink() != rds_data
    # The sync thread removes the old payload after the swap Envoy already follows (as
    # kubelet's AtomicWriter does), so on a busy machine the removal may lag `apply`.
    old_payload = envoy.root / "rds" / rds_data
    wait_until(
        lambda: True if not old_payload.exists() else None, 5.0, "the old payload dir cleaned up"
    )


def _route_file(routes: list[dict[str, object]]) -> str:
    route_config = {"name": xds.ROUTE_CONFIG_NAME, "validate_clusters": True}
    route_config["virtual_hosts"] = [{"name": "tierscale", "domains": ["*"], "routes": routes}]
    return xds.dump_discovery_response([route_config], xds.ROUTE_TYPE)


BROKEN_ROUTE_FILES = {
    "unknown cluster": _route_file(
        [{"match": {"prefix": "/"}, "route": {"cluster": "no-such-cluster"}}]
    ),
    "malformed route": _route_file([{"match": {"prefix": "/"}, "route": {"weigthed": 1}}]),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_ROUTE_FILES))
def test_a_broken_route_patched_by_hand_is_rejected_and_live_routing_keeps_working(
    envoy: TestbedEnvoy, name_echo_upstreams: dict[str, NameEchoUpstream], broken: str
) -> None:
    suffix = secrets.token_hex(3)
    envoy.apply(_table(suffix, {"a": 1000}, name_echo_upstreams))
    live = envoy.process.live_versions()["rds"]
    rejected_before = envoy.route_rejections()

    envoy.patch_configmap({xds.RDS_FILE: BROKEN_ROUTE_FILES[broken]})

    envoy.wait_for_rejections(rejected_before + 1, timeout_s=10)
    assert envoy.process.live_versions()["rds"] == live
    with TierClient(envoy, f"gold-{suffix}") as client:
        assert client.split(20) == Counter({"a": 20})
    # A valid config applies again afterwards.
    envoy.apply(_table(suffix, {"b": 1000}, name_echo_upstreams))


def test_the_production_writer_never_publishes_a_config_envoy_rejects(
    envoy: TestbedEnvoy, name_echo_upstreams: dict[str, NameEchoUpstream]
) -> None:
    good = _table(secrets.token_hex(3), {"a": 1000}, name_echo_upstreams)
    envoy.apply(good)
    before = envoy.configmap_data()
    writer = configmap_writer.ConfigMapRoutingWriter(
        envoy.core_v1(),
        envoy.namespace,
        envoy.configmap_name,
        envoy.layout,
        xds.ListenerSettings(address="127.0.0.1", port=70000),
        str(envoy.process.binary),
    )
    with pytest.raises(validation.EnvoyConfigRejected, match="PortValue"):
        writer.apply(good)
    assert envoy.configmap_data() == before
