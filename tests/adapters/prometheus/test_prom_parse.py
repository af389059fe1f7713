"""Prometheus JSON -> numbers and histograms: NaN is None, never 0; bad shapes raise."""

from __future__ import annotations

import pytest

from tests.adapters.prometheus.prom_fakes import bucket_rows, pool_sample
from tierscale.adapters.prometheus import parse
from tierscale.domain.metrics import Histogram

POOL = ("namespace", "deployment")


def test_instant_vector_by_group() -> None:
    result = [pool_sample("ns", "a", "1.5"), pool_sample("ns", "b", 3)]
    assert parse.instant_vector(result, POOL) == {("ns", "a"): 1.5, ("ns", "b"): 3.0}


@pytest.mark.parametrize("raw", ["NaN", "+Inf", "-Inf"])
def test_non_finite_values_are_none_not_zero(raw: str) -> None:
    assert parse.instant_vector([pool_sample("ns", "a", raw)], POOL) == {("ns", "a"): None}


@pytest.mark.parametrize(
    "result",
    [
        {"resultType": "vector"},
        "not a list",
        [{"value": [1, "2"]}],
        [{"metric": {"namespace": "ns"}, "value": [1, "2"]}],
        [{"metric": {"namespace": "ns", "deployment": "a"}, "value": [1]}],
        [{"metric": {"namespace": "ns", "deployment": "a"}, "value": [1, "abc"]}],
        [{"metric": {"namespace": "ns", "deployment": "a"}, "value": ["x", "1"]}],
        [{"metric": {"namespace": "ns", "deployment": "a"}, "value": [1, None]}],
        [pool_sample("ns", "a", 1), pool_sample("ns", "a", 2)],
    ],
)
def test_malformed_responses_raise(result: object) -> None:
    with pytest.raises(parse.ResponseError):
        parse.instant_vector(result, POOL)


def test_histograms_from_bucket_rows() -> None:
    rows = bucket_rows("ns", "a", {"0.5": 98, "1": 100, "+Inf": 100, "0.25": 50})
    (histogram,) = parse.histograms(rows, POOL).values()
    assert histogram == Histogram((0.25, 0.5, 1.0), (50.0, 98.0, 100.0), 100.0)
    assert histogram.quantile(0.99) == pytest.approx(0.75)


def test_histogram_counts_are_made_monotonic_like_histogram_quantile() -> None:
    rows = bucket_rows("ns", "a", {"0.5": 10.2, "1": 10.0, "+Inf": 9.9})
    (histogram,) = parse.histograms(rows, POOL).values()
    assert histogram is not None
    assert histogram.cumulative_counts == (10.2, 10.2) and histogram.count == 10.2


def test_histogram_without_inf_bucket_or_with_nan_is_none() -> None:
    rows = bucket_rows("ns", "a", {"0.5": 1, "1": 2})
    rows += bucket_rows("ns", "b", {"0.5": "NaN", "+Inf": 2})
    assert parse.histograms(rows, POOL) == {("ns", "a"): None, ("ns", "b"): None}


def test_histogram_with_no_observations_is_a_zero_count_not_none() -> None:
    rows = bucket_rows("ns", "a", {"0.5": 0, "+Inf": 0})
    (histogram,) = parse.histograms(rows, POOL).values()
    assert histogram is not None and histogram.count == 0.0
    assert histogram.quantile(0.99) is None


@pytest.mark.parametrize("le", ["abc", "NaN", None])
def test_bad_le_raises(le: str | None) -> None:
    row = pool_sample("ns", "a", 1)
    row["metric"] = {"namespace": "ns", "deployment": "a", **({"le": le} if le else {})}
    with pytest.raises(parse.ResponseError):
        parse.histograms([row], POOL)


def test_matrix_drops_nan_points_and_sorts() -> None:
    result = [
        {
            "metric": {"envoy_route": "ns_gold"},
            "values": [[30, "3"], [10, "1"], [20, "NaN"]],
        }
    ]
    assert parse.matrix(result, ("envoy_route",)) == {("ns_gold",): ((10.0, 1.0), (30.0, 3.0))}
    with pytest.raises(parse.ResponseError):
        parse.matrix([{"metric": {"envoy_route": "x"}}], ("envoy_route",))


def test_number() -> None:
    assert parse.number("1e3") == 1000.0
    assert parse.number(2) == 2.0
    assert parse.number("NaN") is None
    with pytest.raises(parse.ResponseError):
        parse.number(True)
