"""Prometheus scrapes the testbed's Envoy and sees request counts per tier."""

from __future__ import annotations

import secrets

import pytest
from tierscale_testbed import prometheus as prom
from tierscale_testbed.envoy import NameEchoUpstream, TestbedEnvoy, TierClient
from tierscale_testbed.prometheus import TestbedPrometheus

from tierscale.adapters.envoy import routing

pytestmark = [pytest.mark.e2e]


def test_per_tier_request_counts_reach_prometheus(
    envoy: TestbedEnvoy,
    prometheus: TestbedPrometheus,
    name_echo_upstreams: dict[str, NameEchoUpstream],
) -> None:
    suffix = secrets.token_hex(3)
    gold, bronze = f"gold-{suffix}", f"bronze-{suffix}"
    pool_a, pool_b = f"pool-a-{suffix}", f"pool-b-{suffix}"
    envoy.apply(
        routing.RoutingTable(
            tiers=(
                routing.TierRoute(gold, "x-slo-tier", gold, {pool_a: 1000}),
                routing.TierRoute(bronze, "x-slo-tier", bronze, {pool_a: 500, pool_b: 500}),
            ),
            pools=(
                routing.PoolCluster(pool_a, name_echo_upstreams["a"].endpoints),
                routing.PoolCluster(pool_b, name_echo_upstreams["b"].endpoints),
            ),
        )
    )
    # Envoy creates a route's counters at its first request, and rate() ignores the value a
    # series starts with: one request per tier first, seen by Prometheus, then the load.
    for tier in (gold, bronze):
        with TierClient(envoy, tier) as client:
            client.send()
    prometheus.wait_for(
        f'envoy_vhost_route_upstream_rq_total{{envoy_route=~"{gold}|{bronze}"}}',
        lambda result: sorted(prom.value(s) for s in result) == [1.0, 1.0],
    )
    with TierClient(envoy, gold) as client:
        assert sum(client.split(29).values()) == 29
    with TierClient(envoy, bronze) as client:
        assert set(client.split(9)) <= {"a", "b"}

    counts = prometheus.wait_for(
        f'envoy_vhost_route_upstream_rq_total{{envoy_route=~"{gold}|{bronze}"}}',
        lambda result: sorted(prom.value(s) for s in result) == [10.0, 30.0],
    )
    assert {s["metric"]["envoy_route"]: prom.value(s) for s in counts} == {gold: 30, bronze: 10}
    assert all(s["metric"]["job"] == "envoy" for s in counts)

    rates = prometheus.wait_for(
        f'tierscale:tier_requests:rate10s{{envoy_route=~"{gold}|{bronze}"}}',
        lambda result: len(result) == 2 and all(prom.value(s) > 0 for s in result),
    )
    by_tier = {s["metric"]["envoy_route"]: prom.value(s) for s in rates}
    assert by_tier[gold] > by_tier[bronze], "3x the requests give a higher rate"

    per_pool = prometheus.wait_for(
        f'envoy_cluster_upstream_rq_total{{envoy_cluster_name=~"{pool_a}|{pool_b}"}}',
        lambda result: sum(prom.value(s) for s in result) == 40.0,
    )
    assert {s["metric"]["envoy_cluster_name"] for s in per_pool} <= {pool_a, pool_b}


def test_prometheus_scrapes_envoy_every_second(prometheus: TestbedPrometheus) -> None:
    targets = prometheus.wait_for_targets("envoy", lambda ts: ts[0]["health"] == "up")
    assert targets[0]["scrapeInterval"] == "1s"
    assert targets[0]["scrapeUrl"].endswith("/stats/prometheus")


def test_operator_targets_are_picked_up_from_their_file(prometheus: TestbedPrometheus) -> None:
    labels = {"namespace": "tierscale-system", "pod": f"tierscale-{secrets.token_hex(2)}"}
    prometheus.set_operator_targets(["127.0.0.1:9"], labels)
    try:
        targets = prometheus.wait_for_targets(
            "tierscale-operator", lambda ts: ts[0]["labels"].get("pod") == labels["pod"]
        )
        assert targets[0]["labels"]["namespace"] == "tierscale-system"
    finally:
        prometheus.set_operator_targets([], {})
