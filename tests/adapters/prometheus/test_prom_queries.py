"""The query table: every input renders to PromQL with its window and selector, no
percentile is baked in, and the pod selector picks exactly one Deployment's pods."""

from __future__ import annotations

import re

import pytest

from tierscale.adapters.prometheus import queries

ALL_INPUTS = (*queries.RECORDED, *queries.POD_INPUTS)


def _re2_fullmatch(promql_regex: str, text: str) -> bool:
    """PromQL's `=~` is fully anchored; its string escapes (`\\\\.`) are undone first."""
    return re.fullmatch(promql_regex.replace("\\\\", "\\"), text) is not None


def _pod_regex(selector: str) -> str:
    match = re.search(r'pod=~"([^"]*)"', selector)
    assert match, selector
    return match.group(1)


def test_names_and_records_are_unique() -> None:
    assert len({q.name for q in ALL_INPUTS}) == len(ALL_INPUTS)
    assert len({q.record for q in ALL_INPUTS}) == len(ALL_INPUTS)
    assert all(q.record.startswith(queries.RULE_PREFIX) for q in ALL_INPUTS)


@pytest.mark.parametrize("query", ALL_INPUTS, ids=lambda q: q.name)
def test_every_input_renders_with_window_and_selector(query: queries.Input) -> None:
    promql = query.render('{namespace="ns"}', 90.0)
    assert "{selector}" not in promql and "{window}" not in promql
    assert promql.count("(") == promql.count(")")
    assert ('{namespace="ns"}[90s]' in promql) == query.windowed
    assert '{namespace="ns"}' in promql
    assert (query.record_name(90.0).endswith("90s")) == query.windowed


@pytest.mark.parametrize("query", ALL_INPUTS, ids=lambda q: q.name)
def test_no_percentile_is_hard_coded(query: queries.Input) -> None:
    promql = query.render("", 60.0)
    assert "histogram_quantile" not in promql and "quantile" not in promql
    assert not re.search(r"\b0\.\d+\b", promql), promql


def test_histograms_are_bucket_increases_grouped_by_le() -> None:
    for query in (queries.POOL_TTFT, queries.POOL_TPOT, queries.POOL_PROMPT_TOKENS):
        promql = query.render("", 60.0)
        assert promql.startswith("sum by (namespace, deployment, le) ")
        assert "increase(" in promql and "_bucket[1m]" in promql


def test_deprecated_vllm_names_are_fallbacks() -> None:
    tpot = queries.POOL_TPOT.render("", 60.0)
    assert tpot.index("vllm:request_time_per_output_token_seconds_bucket") < tpot.index(
        "vllm:time_per_output_token_seconds_bucket"
    )
    kv = queries.POOL_KV_USAGE.render("", 60.0)
    assert "vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc" in kv


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60.0, "1m"), (10.0, "10s"), (90.0, "90s"), (0.5, "500ms"), (3600.0, "60m"), (15, "15s")],
)
def test_duration(seconds: float, text: str) -> None:
    assert queries.duration(seconds) == text
    assert queries.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 0.0001])
def test_duration_refuses_what_promql_cannot_say(bad: float) -> None:
    with pytest.raises(ValueError, match="window"):
        queries.duration(bad)


@pytest.mark.parametrize("bad", ["", "abc", "1d", "-5s", "0s"])
def test_parse_duration_says_what_it_accepts(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        queries.parse_duration(bad)


def test_pool_selector_picks_one_deployments_pods() -> None:
    selector = queries.pool_selector([("ns", "gold")])
    assert selector.startswith('{namespace="ns",')
    regex = _pod_regex(selector)
    assert _re2_fullmatch(regex, "gold-7d9f8b6c5d-x2b4z")
    assert _re2_fullmatch(regex, "gold-5c6b7d8f9-abcde")
    assert not _re2_fullmatch(regex, "gold-x-7d9f8b6c5d-x2b4z"), "another Deployment"
    assert not _re2_fullmatch(regex, "gold-0"), "a StatefulSet-style name"
    assert not _re2_fullmatch(regex, "old-gold-7d9f8b6c5d-x2b4z")


def test_deployment_is_recovered_from_the_pod_name() -> None:
    for pod, deployment in [
        ("gold-7d9f8b6c5d-x2b4z", "gold"),
        ("llama-8b-gold-7d9f8b6c5d-x2b4z", "llama-8b-gold"),
        ("gold-x-5c6b7d8f9-abcde", "gold-x"),
    ]:
        match = re.fullmatch(queries.DEPLOYMENT_FROM_POD_RE, pod)
        assert match and match.group(1) == deployment


def test_many_pools_share_one_selector_and_names_are_escaped() -> None:
    pools = [("ns-a", "gold"), ("ns-b", "bronze.v2"), ("ns-a", "silver")]
    selector = queries.pool_selector(pools)
    assert 'namespace=~"(?:ns-a|ns-b)"' in selector
    regex = _pod_regex(selector)
    assert _re2_fullmatch(regex, "bronze.v2-7d9f8b6c5d-x2b4z")
    assert not _re2_fullmatch(regex, "bronzexv2-7d9f8b6c5d-x2b4z"), "the dot is literal"
    assert _re2_fullmatch(regex, "silver-7d9f8b6c5d-x2b4z")
    assert queries.recorded_pool_selector(pools) == (
        '{namespace=~"(?:ns-a|ns-b)",deployment=~"(?:bronze\\\\.v2|gold|silver)"}'
    )


def test_route_selector() -> None:
    assert queries.route_selector(["ns_gold"]) == '{envoy_route="ns_gold"}'
    assert queries.route_selector(["ns_gold", "ns_bronze"]) == (
        '{envoy_route=~"(?:ns_bronze|ns_gold)"}'
    )
    with pytest.raises(ValueError):
        queries.route_selector([])


def test_recorded_query_names_the_rule() -> None:
    promql = queries.POOL_TTFT.render_recorded('{namespace="ns",deployment="gold"}', 10.0)
    assert promql == (
        'tierscale:pool_ttft_seconds_bucket:increase10s{namespace="ns",deployment="gold"}'
    )
