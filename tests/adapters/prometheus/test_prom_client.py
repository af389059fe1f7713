"""`PrometheusMetrics` over a scripted transport: which queries a read makes, how answers
become `MetricInputs`, and how every kind of failure becomes None (never 0, never raised)."""

from __future__ import annotations

import pytest

from tests.adapters.prometheus.prom_fakes import (
    NOW_S,
    WINDOW_S,
    ScriptedTransport,
    healthy_pool_responses,
    healthy_tier_responses,
    pool_promql,
    pool_sample,
    route_sample,
    sample,
    tier,
    tier_promql,
)
from tierscale.adapters.prometheus import queries
from tierscale.adapters.prometheus.client import HISTORY_INPUT, PrometheusMetrics
from tierscale.loop import observe
from tierscale.loop.ports import PortError
from tierscale.settings import Settings

GOLD = tier("gold", "gold-pool", percentile=99.0)
BRONZE = tier("bronze", "bronze-pool", percentile=90.0, ttft_s=0.25, tpot_s=0.025)
POOLS = [("ns", "bronze-pool"), ("ns", "gold-pool")]
ROUTES = ["ns_bronze", "ns_gold"]


def _healthy() -> ScriptedTransport:
    return ScriptedTransport({**healthy_pool_responses(POOLS), **healthy_tier_responses(ROUTES)})


def _adapter(transport: ScriptedTransport, **kwargs: object) -> PrometheusMetrics:
    options: dict[str, object] = {"window_s": WINDOW_S, "rate_history_s": 300.0}
    options.update(kwargs)
    return PrometheusMetrics("http://prom.test:9090", transport=transport, **options)  # type: ignore[arg-type]


def test_a_healthy_read_fills_every_field() -> None:
    transport = _healthy()
    transport.ranges[tier_promql(queries.TIER_RATE, ROUTES, WINDOW_S)] = [
        {"metric": {"envoy_route": "ns_gold"}, "values": [[NOW_S - 30, "1.0"], [NOW_S, "1.75"]]}
    ]
    adapter = _adapter(transport)
    inputs = adapter.read([GOLD, BRONZE], NOW_S)

    gold = inputs.traffic_by_tier["ns/gold"]
    assert gold.rate_rps == 1.75 and gold.sampled_at_s == NOW_S - 2 and gold.window_s == WINDOW_S
    assert gold.rate_history_rps == ((NOW_S - 30, 1.0), (NOW_S, 1.75))
    assert inputs.traffic_by_tier["ns/bronze"].rate_history_rps == ()
    pool = inputs.signals_by_pool["ns/gold-pool"]
    assert pool.sampled_at_s == NOW_S - 3
    assert pool.ttft is not None and pool.ttft.count == 100
    assert pool.prompt_tokens is not None and pool.prompt_tokens.mean() == 900
    assert pool.output_tokens is not None and pool.output_tokens.mean() == 64
    assert pool.tpot is not None and pool.tpot.mean() == pytest.approx(0.03)
    assert (pool.running_requests, pool.waiting_requests) == (7, 2)
    assert (pool.kv_usage_frac, pool.finished_rate_rps) == (0.25, 1.5)
    assert inputs.replicas_by_pool == {}
    assert adapter.errors_total == 0


def test_each_tier_gets_its_own_percentile_and_attainment() -> None:
    inputs = _adapter(_healthy()).read([GOLD, BRONZE], NOW_S)
    by_tier = observe.observations([GOLD, BRONZE], inputs).by_tier
    # TTFT buckets 0.1:50 0.25:90 0.5:98 1.0:100 -> p99 = 0.5 + 0.5 * (99 - 98) / 2,
    # p90 = 0.25 exactly; attainment at 0.5 s / 0.05 s: 0.98 + 0.95 - 1.
    assert by_tier["ns/gold"].ttft_s == pytest.approx(0.75)
    assert by_tier["ns/bronze"].ttft_s == pytest.approx(0.25)
    assert by_tier["ns/gold"].attainment_frac == pytest.approx(0.93)
    assert by_tier["ns/bronze"].attainment_frac == pytest.approx(0.90 + 0.60 - 1)
    assert by_tier["ns/gold"].window_requests == 100
    assert by_tier["ns/gold"].prompt_tokens_mean == 900


def test_a_read_makes_the_same_fifteen_queries_for_any_number_of_pools() -> None:
    for count in (1, 2, 10):
        tiers = [tier(f"t{i}", f"pool-{i}") for i in range(count)]
        transport = ScriptedTransport()
        adapter = _adapter(transport)
        adapter.read(tiers, NOW_S)
        assert len(transport.calls) == 15 == adapter.queries_total
        assert [c.kind for c in transport.calls].count("range") == 1
        assert all(c.args[0] == NOW_S for c in transport.calls if c.kind == "instant")


def test_history_is_a_range_query_ending_now_with_the_control_interval_as_step() -> None:
    transport = _healthy()
    _adapter(transport, rate_history_s=900.0, history_step_s=15.0).read([GOLD], NOW_S)
    (history,) = [c for c in transport.calls if c.kind == "range"]
    assert history.promql == tier_promql(queries.TIER_RATE, ["ns_gold"], WINDOW_S)
    assert history.args[:3] == (NOW_S - 900.0, NOW_S, 15.0)


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("HTTP Status Code 422 (bad_data)"), ValueError("bad JSON"), KeyError("data")],
)
def test_a_failing_query_is_none_for_its_field_only_and_counted(failure: Exception) -> None:
    transport = _healthy()
    transport.responses[pool_promql(queries.POOL_TTFT, POOLS, WINDOW_S)] = failure
    adapter = _adapter(transport)
    inputs = adapter.read([GOLD, BRONZE], NOW_S)
    pool = inputs.signals_by_pool["ns/gold-pool"]
    assert pool.ttft is None
    assert pool.tpot is not None and pool.running_requests == 7
    assert adapter.errors_total == 1 and adapter.errors_by_input == {"pool_ttft": 1}
    assert type(failure).__name__ in adapter.last_errors[-1].reason
    obs = observe.observations([GOLD], inputs).by_tier["ns/gold"]
    assert obs.ttft_s is None and obs.tpot_s is not None


@pytest.mark.parametrize("failure", [ConnectionRefusedError("refused"), TimeoutError("timed out")])
def test_a_connection_failure_ends_the_read_and_the_next_read_tries_again(
    failure: Exception,
) -> None:
    transport = _healthy()
    transport.responses[pool_promql(queries.POOL_TTFT, POOLS, WINDOW_S)] = failure
    adapter = _adapter(transport)
    inputs = adapter.read([GOLD, BRONZE], NOW_S)
    # Tier queries, the history, the pools' heartbeat and TTFT were sent; nothing after.
    assert [c.promql for c in transport.calls][-1] == pool_promql(
        queries.POOL_TTFT, POOLS, WINDOW_S
    )
    assert adapter.queries_total == len(transport.calls) == 5
    assert adapter.errors_total == 15 - 4
    assert all("skipped: " in e.reason for e in list(adapter.last_errors)[1:])
    assert inputs.traffic_by_tier["ns/gold"].rate_rps == 1.75
    pool = inputs.signals_by_pool["ns/gold-pool"]
    assert (pool.ttft, pool.tpot, pool.running_requests) == (None, None, None)

    del transport.responses[pool_promql(queries.POOL_TTFT, POOLS, WINDOW_S)]
    transport.responses[pool_promql(queries.POOL_TTFT, POOLS, WINDOW_S)] = healthy_pool_responses(
        POOLS
    )[pool_promql(queries.POOL_TTFT, POOLS, WINDOW_S)]
    assert adapter.read([GOLD, BRONZE], NOW_S).signals_by_pool["ns/gold-pool"].tpot is not None
    assert adapter.queries_total == 5 + 15


def test_nan_and_missing_groups_are_none_not_zero() -> None:
    transport = _healthy()
    transport.responses[pool_promql(queries.POOL_RUNNING, POOLS, WINDOW_S)] = [
        pool_sample("ns", "gold-pool", "NaN")
    ]
    transport.responses[pool_promql(queries.POOL_KV_USAGE, POOLS, WINDOW_S)] = []
    adapter = _adapter(transport)
    inputs = adapter.read([GOLD, BRONZE], NOW_S)
    assert inputs.signals_by_pool["ns/gold-pool"].running_requests is None
    assert inputs.signals_by_pool["ns/bronze-pool"].running_requests is None
    assert inputs.signals_by_pool["ns/gold-pool"].kv_usage_frac is None
    assert adapter.errors_by_input == {"pool_running": 1, "pool_kv_usage": 1}
    assert "NaN" in adapter.last_errors[0].reason and "bronze-pool" in adapter.last_errors[0].reason


def test_unrequested_groups_are_dropped() -> None:
    transport = _healthy()
    promql = pool_promql(queries.POOL_RUNNING, POOLS, WINDOW_S)
    transport.responses[promql] = [
        *transport.responses[promql],  # type: ignore[misc]
        pool_sample("other", "gold-pool", 99),
    ]
    inputs = _adapter(transport).read([GOLD, BRONZE], NOW_S)
    assert set(inputs.signals_by_pool) == {"ns/gold-pool", "ns/bronze-pool"}


def test_a_stale_pool_keeps_its_time_and_loses_every_value() -> None:
    transport = ScriptedTransport(
        {
            **healthy_pool_responses(POOLS, sampled_at_s=NOW_S - 91),
            **healthy_tier_responses(ROUTES, sampled_at_s=NOW_S - 200),
        }
    )
    inputs = _adapter(transport, stale_after_s=90.0).read([GOLD, BRONZE], NOW_S)
    pool = inputs.signals_by_pool["ns/gold-pool"]
    assert pool.sampled_at_s == NOW_S - 91
    assert (pool.ttft, pool.running_requests, pool.kv_usage_frac) == (None, None, None)
    traffic = inputs.traffic_by_tier["ns/gold"]
    assert traffic.sampled_at_s == NOW_S - 200 and traffic.rate_rps is None


def test_a_sample_just_inside_the_limit_is_used() -> None:
    responses = healthy_pool_responses([("ns", "gold-pool")], sampled_at_s=NOW_S - 90)
    transport = ScriptedTransport(responses)
    inputs = _adapter(transport, stale_after_s=90.0).read([GOLD], NOW_S)
    assert inputs.signals_by_pool["ns/gold-pool"].running_requests == 7


def test_without_a_heartbeat_a_pool_or_tier_is_absent() -> None:
    transport = _healthy()
    transport.responses[pool_promql(queries.POOL_SAMPLED_AT, POOLS, WINDOW_S)] = [
        pool_sample("ns", "bronze-pool", NOW_S - 1)
    ]
    transport.responses[tier_promql(queries.TIER_SAMPLED_AT, ROUTES, WINDOW_S)] = [
        route_sample("ns_bronze", NOW_S - 1)
    ]
    inputs = _adapter(transport).read([GOLD, BRONZE], NOW_S)
    assert set(inputs.signals_by_pool) == {"ns/bronze-pool"}
    assert set(inputs.traffic_by_tier) == {"ns/bronze"}
    assert "ns/gold" not in observe.observations([GOLD, BRONZE], inputs).by_tier


def test_an_unreachable_prometheus_measures_nothing_and_raises_nothing() -> None:
    transport = ScriptedTransport()
    everything_fails = ConnectionRefusedError("refused")
    transport.responses = _RaiseForAll(everything_fails)  # type: ignore[assignment]
    transport.ranges = _RaiseForAll(everything_fails)  # type: ignore[assignment]
    adapter = _adapter(transport)
    inputs = adapter.read([GOLD, BRONZE], NOW_S)
    assert inputs.traffic_by_tier == {} and inputs.signals_by_pool == {}
    assert adapter.errors_total == 15 and adapter.queries_total == len(transport.calls) == 1
    assert HISTORY_INPUT in adapter.errors_by_input
    assert observe.observations([GOLD, BRONZE], inputs).by_tier == {}
    assert adapter.inflight_by_pod("ns/gold-pool", NOW_S) == {}


class _RaiseForAll(dict[str, object]):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        return self.error


def test_recording_rules_mode_queries_the_recorded_series() -> None:
    transport = ScriptedTransport()
    _adapter(transport, use_recording_rules=True, window_s=10.0).read([GOLD, BRONZE], NOW_S)
    sent = {c.promql for c in transport.calls}
    pools = '{namespace="ns",deployment=~"(?:bronze-pool|gold-pool)"}'
    assert f"tierscale:pool_ttft_seconds_bucket:increase10s{pools}" in sent
    assert f"tierscale:pool_sample_time_seconds:min{pools}" in sent
    assert 'tierscale:tier_requests:rate10s{envoy_route=~"(?:ns_bronze|ns_gold)"}' in sent
    assert all(promql.startswith("tierscale:") for promql in sent)


def test_inflight_by_pod_leaves_out_stale_and_foreign_pods() -> None:
    pools = [("ns", "gold-pool")]
    transport = ScriptedTransport(
        {
            pool_promql(queries.POD_INFLIGHT, pools, WINDOW_S): [
                sample({"namespace": "ns", "pod": "gold-pool-7d9f8b6c5d-aaaaa"}, 3),
                sample({"namespace": "ns", "pod": "gold-pool-7d9f8b6c5d-bbbbb"}, 0),
                sample({"namespace": "ns", "pod": "gold-pool-7d9f8b6c5d-ccccc"}, 5),
            ],
            pool_promql(queries.POD_SAMPLED_AT, pools, WINDOW_S): [
                sample({"namespace": "ns", "pod": "gold-pool-7d9f8b6c5d-aaaaa"}, NOW_S - 1),
                sample({"namespace": "ns", "pod": "gold-pool-7d9f8b6c5d-bbbbb"}, NOW_S - 2),
                sample({"namespace": "ns", "pod": "gold-pool-7d9f8b6c5d-ccccc"}, NOW_S - 300),
            ],
        }
    )
    adapter = _adapter(transport)
    assert adapter.inflight_by_pod("ns/gold-pool", NOW_S) == {
        "gold-pool-7d9f8b6c5d-aaaaa": 3.0,
        "gold-pool-7d9f8b6c5d-bbbbb": 0.0,
    }
    assert adapter.queries_total == 2


@pytest.mark.parametrize("url", ["", "prometheus:9090", "ftp://host", "http://"])
def test_a_url_that_cannot_work_is_a_port_error(url: str) -> None:
    with pytest.raises(PortError, match="prometheus_url"):
        PrometheusMetrics(url, transport=ScriptedTransport())


def test_from_settings() -> None:
    settings = Settings(
        prometheus_url="http://prom.test:9090",
        metrics_window_s=10.0,
        stale_after_s=30.0,
        rate_history_s=120.0,
        control_interval_s=5.0,
        prometheus_timeout_s=2.0,
        use_recording_rules=True,
    )
    adapter = PrometheusMetrics.from_settings(settings, transport=ScriptedTransport())
    assert (adapter.window_s, adapter.stale_after_s, adapter.rate_history_s) == (10, 30, 120)
    assert (adapter.history_step_s, adapter.timeout_s, adapter.use_recording_rules) == (
        5.0,
        2.0,
        True,
    )
