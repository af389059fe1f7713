"""EnvoyRouter: each model group replaces only its own routes in the shared ConfigMap; a
refused config changes nothing live; a concurrent writer is a PortError, not a lost write."""

from __future__ import annotations

import pytest
import yaml

from tierscale.adapters.envoy import configmap_writer, fake, intent_routing, router, xds
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.loop.actions import RoutingIntent, TierRouteIntent
from tierscale.loop.ports import PortError, RouteOutcome, RoutesRejected

LLAMA = Tier("gold", "prod", "llama", Slo(0.5, 0.05), Pool("llama-gold"))
QWEN = Tier("std", "prod", "qwen", Slo(2.0, 0.1), Pool("qwen-std"))


def _intent(tier: Tier) -> RoutingIntent:
    route = TierRouteIntent(
        tier.key, f"prod_{tier.name}", "x-slo-tier", tier.name, {f"prod/{tier.pool.deployment}": 1}
    )
    return RoutingIntent(routes=(route,))


class _Clock:
    now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _router(
    api: fake.InMemoryConfigMaps,
    envoy_binary: str,
    layout: xds.XdsLayout,
    live: set[str] | None = None,
    settings: xds.ListenerSettings | None = None,
) -> router.EnvoyRouter:
    writer = configmap_writer.ConfigMapRoutingWriter(
        api, "ns", "envoy", layout, settings or xds.ListenerSettings(), envoy_binary, 0.0, _Clock()
    )
    return router.EnvoyRouter(
        writer,
        intent_routing.eds_endpoints("/etc/envoy/eds"),
        None if live is None else (lambda: live),
    )


def _route_names(api: fake.InMemoryConfigMaps) -> list[str]:
    rds = yaml.safe_load(api.maps[("ns", "envoy")].data[xds.RDS_FILE])
    return [r["name"] for r in rds["resources"][0]["virtual_hosts"][0]["routes"]]


def test_groups_merge_and_a_steady_tick_writes_nothing(
    envoy_binary: str, layout: xds.XdsLayout
) -> None:
    api = fake.InMemoryConfigMaps()
    api.create("ns", "envoy")
    envoy = _router(api, envoy_binary, layout)
    assert envoy.apply(_intent(LLAMA), [LLAMA]) is RouteOutcome.PUBLISHED
    # A second router (an operator restart) merges into what is live.
    restarted = _router(api, envoy_binary, layout)
    assert restarted.apply(_intent(QWEN), [QWEN]) is RouteOutcome.STAGED, "new cluster first"
    assert restarted.apply(_intent(QWEN), [QWEN]) is RouteOutcome.PUBLISHED
    assert _route_names(api) == ["prod_gold", "prod_std"]
    patches = len(api.patches)
    assert restarted.apply(_intent(LLAMA), [LLAMA]) is RouteOutcome.UNCHANGED
    assert len(api.patches) == patches


def test_routes_of_a_group_that_no_longer_exists_are_dropped(
    envoy_binary: str, layout: xds.XdsLayout
) -> None:
    api = fake.InMemoryConfigMaps()
    api.create("ns", "envoy")
    live = {"llama", "qwen"}
    envoy = _router(api, envoy_binary, layout, live)
    envoy.apply(_intent(LLAMA), [LLAMA])
    envoy.apply(_intent(QWEN), [QWEN])
    envoy.apply(_intent(QWEN), [QWEN])
    assert _route_names(api) == ["prod_gold", "prod_std"]
    live.discard("llama")
    envoy.apply(_intent(QWEN), [QWEN])
    assert _route_names(api) == ["prod_std"]


def test_a_config_envoy_refuses_is_not_written(envoy_binary: str, layout: xds.XdsLayout) -> None:
    api = fake.InMemoryConfigMaps()
    api.create("ns", "envoy")
    _router(api, envoy_binary, layout).apply(_intent(LLAMA), [LLAMA])
    before = dict(api.maps[("ns", "envoy")].data)
    broken = _router(api, envoy_binary, layout, settings=xds.ListenerSettings(address="not-an-ip"))
    with pytest.raises(RoutesRejected, match="Envoy rejected the routing config: .*not-an-ip"):
        broken.apply(_intent(QWEN), [QWEN])
    assert api.maps[("ns", "envoy")].data == before


def test_a_concurrent_write_is_a_port_error_and_nothing_is_lost(
    envoy_binary: str, layout: xds.XdsLayout
) -> None:
    api = fake.InMemoryConfigMaps()
    api.create("ns", "envoy")
    envoy = _router(api, envoy_binary, layout)
    real_read = api.read_namespaced_config_map

    def read_then_someone_writes(name: str, namespace: str) -> fake._ConfigMap:
        live = real_read(name, namespace)
        snapshot = fake._ConfigMap(
            fake._Metadata(name, dict(live.metadata.annotations), live.metadata.resource_version),
            dict(live.data),
        )
        api.patch_namespaced_config_map(name, namespace, {"data": {"other": "x"}})
        return snapshot

    api.read_namespaced_config_map = read_then_someone_writes  # type: ignore[method-assign]
    with pytest.raises(PortError, match="409"):
        envoy.apply(_intent(LLAMA), [LLAMA])
    assert api.maps[("ns", "envoy")].data == {"other": "x"}


def test_the_fake_router_records_intents_and_injects_faults() -> None:
    router_ = fake.FakeRouter()
    assert router_.apply(_intent(LLAMA), [LLAMA]) is RouteOutcome.PUBLISHED
    assert router_.apply(_intent(LLAMA), [LLAMA]) is RouteOutcome.UNCHANGED
    router_.reject_next = "bad weight"
    with pytest.raises(RoutesRejected, match="bad weight"):
        router_.apply(_intent(QWEN), [QWEN])
    router_.fail_next = "API server unreachable"
    with pytest.raises(PortError, match="unreachable"):
        router_.apply(_intent(QWEN), [QWEN])
    assert set(router_.live) == {"llama"}
