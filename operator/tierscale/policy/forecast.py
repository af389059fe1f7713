"""Demand forecast over the cold-start horizon.

A replica asked for now serves only after its cold start (scheduling plus model load,
often minutes), so the planner provisions for the demand expected when it is ready,
not for the demand seen now. The method is deliberately simple and conservative on the
way up, because under-provisioning breaks SLOs while over-provisioning only costs the
GPUs that the stabilisation window later gives back:

    level  = mean of the rates observed in the last `level_window_s`
    slope  = least-squares slope of the rates over the last `trend_window_s`
    trend  = level + max(slope, 0) * horizon_s, at most `max_growth` x level
    burst  = the `burst_quantile` of the rates in the trend window
    forecast = max(latest, level, trend, burst)

Falling demand is not extrapolated downward: scale-down is the stabiliser's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    level_window_s: float = 60.0
    """Window whose mean is the current demand level (smooths per-scrape noise)."""
    trend_window_s: float = 300.0
    """Window the growth trend is fitted over."""
    burst_quantile: float = 0.9
    """Quantile of recent rates provisioned for, so short bursts do not break the SLO."""
    max_growth: float = 3.0
    """A trend never forecasts more than this multiple of the level."""


@dataclass(frozen=True, slots=True)
class Forecast:
    rate_rps: float
    level_rps: float
    slope_rps_per_s: float
    method: str
    """Which term won: 'latest', 'level', 'trend' or 'burst'."""
    backlog_rps: float = 0.0
    """Included in `rate_rps`: the rate that drains the pool's waiting queue (`backlog.py`)."""
    backlog_drain_s: float = 0.0
    """The time the backlog is drained over (seconds); 0 when there is none."""


def forecast_rate(
    latest_rps: float,
    history: Sequence[tuple[float, float]],
    now_s: float,
    horizon_s: float,
    config: ForecastConfig = ForecastConfig(),
) -> Forecast:
    """Rate to provision for `horizon_s` from now; `history` is (time_s, rate_rps), oldest first."""
    times = np.array([t for t, _ in history if now_s - t <= config.trend_window_s], dtype=float)
    rates = np.array([r for t, r in history if now_s - t <= config.trend_window_s], dtype=float)
    latest = max(latest_rps, 0.0)
    if rates.size == 0:
        return Forecast(latest, latest, 0.0, "latest")
    recent = rates[times >= now_s - config.level_window_s]
    level = float(np.mean(recent)) if recent.size else latest
    slope = 0.0
    if rates.size >= 3 and float(np.ptp(times)) > 0.0:
        slope = float(np.polyfit(times - times[0], rates, 1)[0])
    trend = min(
        level + max(slope, 0.0) * max(horizon_s, 0.0), config.max_growth * max(level, latest)
    )
    burst = float(np.quantile(rates, config.burst_quantile))
    candidates = {"latest": latest, "level": level, "trend": trend, "burst": burst}
    method = max(candidates, key=lambda k: candidates[k])
    return Forecast(max(candidates[method], 0.0), level, slope, method)
