"""`RangeTransport` answers instant queries at tick times from one range query per
expression, as Prometheus would have; `parse_time` and the summary's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tierscale.backtest import engine, history, report
from tierscale.cli.backtest import UsageError, parse_time
from tierscale.domain.tiers import Pool, Slo, Tier


class ScriptedRange:
    """A Prometheus whose series `up` is 10 * t at every step it is asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, float]] = []

    def instant(self, promql: str, at_s: float, timeout_s: float) -> object:
        raise AssertionError("a backtest never sends instant queries")

    def range(
        self, promql: str, start_s: float, end_s: float, step_s: float, timeout_s: float
    ) -> object:
        self.calls.append((promql, start_s, end_s, step_s))
        points = []
        at = start_s
        while at <= end_s + 1e-9:
            points.append([at, str(10 * at)])
            at += step_s
        return [{"metric": {"job": "x"}, "values": points}]


def test_one_range_query_per_expression_answers_every_tick() -> None:
    inner = ScriptedRange()
    transport = history.RangeTransport(inner, 100.0, 160.0, 15.0)
    assert transport.grid() == [100.0, 115.0, 130.0, 145.0, 160.0]
    for at in transport.grid():
        assert transport.instant("up", at, 5.0) == [
            {"metric": {"job": "x"}, "value": [at, str(10 * at)]}
        ]
    assert transport.instant("up", 107.0, 5.0) == []  # between ticks: nothing
    assert len(inner.calls) == 1
    history_rows = transport.range("up", 115.0, 145.0, 15.0, 5.0)
    assert history_rows == [
        {
            "metric": {"job": "x"},
            "values": [[115.0, "1150.0"], [130.0, "1300.0"], [145.0, "1450.0"]],
        }
    ]
    assert len(inner.calls) == 1  # served from the cache


def test_long_ranges_are_chunked_under_the_point_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "MAX_POINTS", 3)
    inner = ScriptedRange()
    transport = history.RangeTransport(inner, 0.0, 100.0, 10.0)
    got = transport.instant("up", 100.0, 5.0)
    assert got == [{"metric": {"job": "x"}, "value": [100.0, "1000.0"]}]
    assert [c[1:3] for c in inner.calls] == [(0.0, 30.0), (40.0, 70.0), (80.0, 100.0)]
    assert all(len(transport.instant("up", t, 5.0)) == 1 for t in transport.grid())


def test_parse_time_forms() -> None:
    now = 1_800_000_000.0
    assert parse_time("now", now) == now
    assert parse_time("now-6h", now) == now - 6 * 3600
    assert parse_time("-30m", now) == now - 1800
    assert parse_time("1799990000", now) == 1_799_990_000.0
    expected = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert parse_time("2027-01-15T08:00:00Z", now) == expected
    assert parse_time("2027-01-15T09:00:00+01:00", now) == expected
    with pytest.raises(UsageError, match="time zone"):
        parse_time("2027-01-15T08:00:00", now)
    with pytest.raises(UsageError, match="RFC 3339"):
        parse_time("yesterday", now)


def _tick(at: float, desired: int, actual: float | None, **kw: float) -> engine.TierTick:
    base = dict(
        at_s=at,
        tier_key="ns/gold",
        desired_replicas=desired,
        reason="Steady",
        message="",
        actual_replicas=actual,
        ready_replicas=actual,
        gpus_per_replica=2,
        observed_rate_rps=1.0,
        forecast_rate_rps=1.0,
        observed_ttft_s=0.1,
        observed_tpot_s=0.01,
        predicted_ttft_s=0.1,
        predicted_tpot_s=0.01,
        attainment_frac=0.99,
        slo_ttft_s=0.2,
        slo_tpot_s=0.02,
        attainment_target_frac=0.95,
        spill_out_rps=0.0,
        spill_in_rps=0.0,
        unserved_rps=0.0,
    )
    base.update(kw)
    return engine.TierTick(**base)  # type: ignore[arg-type]


def test_summary_compares_gpu_hours_over_the_same_ticks() -> None:
    tier = Tier(name="gold", namespace="ns", model="m", slo=Slo(0.2, 0.02), pool=Pool("g"))
    result = engine.BacktestResult(0.0, 3600.0, 1800.0, "vllm-pods", tiers=[tier])
    result.ticks = [
        _tick(0.0, 3, 4.0),
        _tick(1800.0, 2, None),  # actual not scraped: left out of both sums
        _tick(3600.0, 1, 2.0, unserved_rps=0.5, spill_out_rps=1.5, attainment_frac=0.5),
    ]
    (s,) = report.summarize(result)
    assert s.compared_ticks == 2
    assert s.gpu_hours_tierscale == pytest.approx((3 + 1) * 2 * 0.5)
    assert s.gpu_hours_actual == pytest.approx((4 + 2) * 2 * 0.5)
    assert s.ticks_predicting_miss == 1 and s.ticks_observed_miss == 1
    assert s.ticks_spilling == 1 and s.spill_out_rps_mean == pytest.approx(1.5)
    assert s.desired_max == 3 and s.actual_mean == pytest.approx(3.0)
