"""The forecast provisions for growth over the cold start and never extrapolates downward."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from tierscale.policy.forecast import ForecastConfig, forecast_rate, step_rate


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


def _window_rates(
    rate_at: Callable[[float], float], times: Sequence[float], window_s: float
) -> list[tuple[float, float]]:
    """The rate over the `window_s` seconds before each time, as Prometheus' rate() gives it
    for arrivals at `rate_at(t)` (integrated exactly on a 0.1 s grid)."""
    out = []
    for t in times:
        steps = int(window_s / 0.1)
        total = sum(rate_at(t - window_s + (i + 0.5) * 0.1) * 0.1 for i in range(steps))
        out.append((t, total / window_s))
    return out


def test_a_step_the_window_hides_is_read_within_one_interval() -> None:
    # S2's mix inversion: a tier jumps from 23 to 92 req/s at 60 s; decisions every 15 s
    # on a 60 s rate window. 15 s later the window reads 40: the step term reads ~92.
    def rate_at(t: float) -> float:
        return 92.0 if t >= 60.0 else 23.0

    history = _window_rates(rate_at, [15.0 * i for i in range(1, 6)], 60.0)
    latest = history[-1][1]
    assert latest == pytest.approx(40.25, abs=0.01)
    f = forecast_rate(latest, history, 75.0, 0.0, window_s=60.0)
    assert f.method == "step" and f.rate_rps == pytest.approx(92.0, rel=0.02)
    assert f.step_s == 15.0
    # Without the window length (or with the term off) the forecast is the window's rate.
    assert forecast_rate(latest, history, 75.0, 0.0).rate_rps == pytest.approx(latest)
    off = ForecastConfig(step_z=None)
    assert forecast_rate(latest, history, 75.0, 0.0, off, window_s=60.0).rate_rps == latest
    # Later ticks keep reading the new rate while the window catches up: what the step
    # term read within the last window is not counted as this traffic's noise.
    for now_s in (90.0, 105.0):
        history = _window_rates(rate_at, [15.0 * i for i in range(1, int(now_s / 15) + 1)], 60.0)
        g = forecast_rate(history[-1][1], history, now_s, 0.0, window_s=60.0)
        assert g.method == "step" and g.rate_rps == pytest.approx(92.0, rel=0.05)


def test_traffic_that_moves_the_estimate_without_a_step_raises_the_bar() -> None:
    # Bursty arrivals: the window rate swings between 32 and 48 req/s from tick to tick.
    # The newest swing reads as 112 req/s for the last 15 s, 64 above the window's rate:
    # beyond Poisson noise (4 sd = 13 req/s), not beyond what the estimate read at every
    # earlier tick. The same last swing after a calm 40 req/s is a step.
    history = [(15.0 * i, 40.0 + (8.0 if i % 2 else -8.0)) for i in range(1, 20)]
    now_s, latest = history[-1]
    assert step_rate(latest, history, now_s, 60.0) is None
    calm = [(t, 40.0) for t, _ in history[:-1]] + [(now_s, latest)]
    assert step_rate(latest, calm, now_s, 60.0) is not None


def test_no_step_is_read_from_a_steady_or_falling_rate_or_from_noise() -> None:
    steady = _window_rates(lambda t: 23.0, [15.0 * i for i in range(1, 9)], 60.0)
    assert forecast_rate(23.0, steady, 120.0, 0.0, window_s=60.0).method != "step"
    falling = _window_rates(
        lambda t: 5.0 if t >= 60.0 else 40.0, [15.0 * i for i in range(1, 6)], 60.0
    )
    assert forecast_rate(falling[-1][1], falling, 75.0, 0.0, window_s=60.0).method != "step"
    # 1 req/s whose window rate moved 1.0 -> 1.2 in 15 s: 1.8 req/s by the step estimate,
    # within 4 Poisson standard deviations (0.43 req/s each) of 1.2: noise, not a step.
    noisy = [(45.0, 1.0), (60.0, 1.0), (75.0, 1.2)]
    assert step_rate(1.2, noisy, 75.0, 60.0) is None
    # The same move at 100x the rate is far beyond noise.
    loud = [(t, 100.0 * r) for t, r in noisy]
    got = step_rate(120.0, loud, 75.0, 60.0)
    assert got is not None and got[0] == pytest.approx(180.0) and got[1] == 15.0
