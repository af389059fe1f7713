"""`FakeMetrics` answers like the real adapter: the same staleness rule, faults that make
fields None or tiers absent, scripts over time, and failures the tick must survive."""

from __future__ import annotations

import pytest

from tests.adapters.prometheus.prom_fakes import tier
from tierscale.adapters.prometheus.fake import (
    FakeMetrics,
    FieldFails,
    Missing,
    Raises,
    Stale,
    Unreachable,
)
from tierscale.domain.metrics import (
    Histogram,
    MetricInputs,
    PoolReplicas,
    PoolSignals,
    TierTraffic,
)
from tierscale.loop import observe
from tierscale.loop.ports import MetricsPort, PortError

GOLD = tier("gold", "gold-pool")
TIERS = [GOLD]


def _inputs(at_s: float, rate_rps: float = 2.0) -> MetricInputs:
    return MetricInputs(
        traffic_by_tier={"ns/gold": TierTraffic(at_s, 60.0, rate_rps, ((at_s, rate_rps),))},
        signals_by_pool={
            "ns/gold-pool": PoolSignals(
                at_s,
                60.0,
                ttft=Histogram.of([0.1, 0.2, 0.3], (0.1, 0.25, 0.5)),
                running_requests=4.0,
                kv_usage_frac=0.3,
            )
        },
        replicas_by_pool={"ns/gold-pool": PoolReplicas(current=2, ready=2)},
    )


def test_it_is_a_metrics_port() -> None:
    port: MetricsPort = FakeMetrics()
    assert port.read(TIERS, 0.0) == MetricInputs()


def test_it_returns_what_it_was_given_without_kubernetes_replicas() -> None:
    metrics = FakeMetrics(_inputs(100.0))
    got = metrics.read(TIERS, 101.0)
    assert got.traffic_by_tier == _inputs(100.0).traffic_by_tier
    assert got.signals_by_pool == _inputs(100.0).signals_by_pool
    assert got.replicas_by_pool == {}
    assert metrics.reads == [101.0]


def test_a_script_steps_over_time() -> None:
    metrics = FakeMetrics([(0.0, _inputs(0.0, 1.0)), (600.0, _inputs(600.0, 5.0))])
    assert metrics.read(TIERS, -1.0) == MetricInputs()
    assert metrics.read(TIERS, 50.0).traffic_by_tier["ns/gold"].rate_rps == 1.0
    assert metrics.read(TIERS, 599.0).traffic_by_tier["ns/gold"].rate_rps is None, "stale by now"
    assert metrics.read(TIERS, 600.0).traffic_by_tier["ns/gold"].rate_rps == 5.0


def test_a_callable_script_sees_tiers_and_time() -> None:
    metrics = FakeMetrics(lambda tiers, now_s: _inputs(now_s, rate_rps=len(tiers) + now_s))
    assert metrics.read(TIERS, 3.0).traffic_by_tier["ns/gold"].rate_rps == 4.0


def test_old_inputs_are_withheld_by_the_adapters_staleness_rule() -> None:
    metrics = FakeMetrics(_inputs(0.0), stale_after_s=90.0)
    assert metrics.read(TIERS, 90.0).signals_by_pool["ns/gold-pool"].running_requests == 4.0
    stale = metrics.read(TIERS, 91.0)
    assert stale.traffic_by_tier["ns/gold"].rate_rps is None
    assert stale.signals_by_pool["ns/gold-pool"] == PoolSignals(0.0, 60.0)


def test_injected_staleness_for_one_key_and_a_time_span() -> None:
    metrics = FakeMetrics(lambda _, now_s: _inputs(now_s))
    metrics.inject(Stale(age_s=120.0, keys={"ns/gold-pool"}), from_s=10.0, until_s=20.0)
    assert metrics.read(TIERS, 5.0).signals_by_pool["ns/gold-pool"].ttft is not None
    during = metrics.read(TIERS, 10.0)
    assert during.signals_by_pool["ns/gold-pool"].ttft is None
    assert during.signals_by_pool["ns/gold-pool"].sampled_at_s == -110.0
    assert during.traffic_by_tier["ns/gold"].rate_rps == 2.0
    assert metrics.read(TIERS, 20.0).signals_by_pool["ns/gold-pool"].ttft is not None


def test_a_failing_field_is_none_and_counted() -> None:
    metrics = FakeMetrics(_inputs(0.0))
    metrics.inject(FieldFails("ttft"))
    metrics.inject(FieldFails("rate_rps", keys={"ns/gold"}))
    got = metrics.read(TIERS, 1.0)
    assert got.signals_by_pool["ns/gold-pool"].ttft is None
    assert got.signals_by_pool["ns/gold-pool"].running_requests == 4.0
    assert got.traffic_by_tier["ns/gold"].rate_rps is None
    assert metrics.errors_total == 2
    obs = observe.observations(TIERS, got).by_tier["ns/gold"]
    assert obs.rate_rps is None and obs.ttft_s is None and obs.running_requests == 4.0


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        FieldFails("ttft_s")


def test_missing_series_and_unreachable() -> None:
    metrics = FakeMetrics(_inputs(0.0), inflight_by_pool={"ns/gold-pool": {"p-1": 2.0}})
    metrics.inject(Missing(keys={"ns/gold"}), until_s=10.0)
    got = metrics.read(TIERS, 1.0)
    assert "ns/gold" not in got.traffic_by_tier and "ns/gold-pool" in got.signals_by_pool
    assert observe.observations(TIERS, got).by_tier == {}
    assert metrics.inflight_by_pod("ns/gold-pool", 1.0) == {"p-1": 2.0}

    metrics.inject(Unreachable(), from_s=10.0)
    assert metrics.read(TIERS, 11.0) == MetricInputs()
    assert metrics.inflight_by_pod("ns/gold-pool", 11.0) == {}
    assert metrics.errors_total == FakeMetrics.QUERIES_PER_READ


def test_raises() -> None:
    metrics = FakeMetrics(_inputs(0.0))
    metrics.inject(Raises())
    with pytest.raises(PortError):
        metrics.read(TIERS, 1.0)
    metrics.clear_faults()
    assert metrics.read(TIERS, 1.0).traffic_by_tier
