"""The forecast provisions for growth over the cold start and never extrapolates downward."""

from __future__ import annotations

import pytest

from tierscale.policy.forecast import forecast_rate


def test_no_history_means_the_latest_rate() -> None:
    result = forecast_rate(2.0, (), now_s=100.0, horizon_s=120.0)
    assert (result.rate_rps, result.method) == (2.0, "latest")


def test_a_rising_trend_is_extrapolated_over_the_cold_start() -> None:
    history = tuple((float(t), 1.0 + 0.01 * t) for t in range(0, 300, 15))
    result = forecast_rate(3.85, history, now_s=300.0, horizon_s=120.0)
    assert result.method == "trend"
    assert result.slope_rps_per_s == pytest.approx(0.01, rel=1e-6)
    assert result.rate_rps > 3.85 + 0.01 * 60


def test_a_falling_trend_is_not_extrapolated_downward() -> None:
    history = tuple((float(t), 5.0 - 0.01 * t) for t in range(0, 300, 15))
    result = forecast_rate(2.2, history, now_s=300.0, horizon_s=120.0)
    assert result.rate_rps >= 2.2


def test_growth_is_capped() -> None:
    history = tuple((float(t), 1.0 + t / 300.0) for t in range(0, 300, 15))
    result = forecast_rate(1.95, history, now_s=300.0, horizon_s=10_000.0)
    assert result.method == "trend"
    assert result.rate_rps == pytest.approx(3.0 * max(result.level_rps, 1.95))
