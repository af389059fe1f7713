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
    step   = the rate of the newest `step_min_s` or more, recovered from how the sliding
             window's rate moved (below), where it is above `latest` beyond Poisson noise
    forecast = max(latest, level, trend, burst, step)

A rate over a W-second window takes W seconds to show a step: 15 s after demand jumped
from 23 to 92 req/s a 60 s window reads 40. Its change says more: W (R(now) - R(then))
counts the requests that arrived since `then` minus those that left the window's start,
so the newest D = now - then seconds ran at about R_gone + (W / D)(R(now) - R(then)),
with R_gone, the rate of the D seconds leaving the window, taken as the window's rate W
seconds ago (else R(then)). That reads 92 at once. Its noise is W / D times a window
rate's, so it is used only where it exceeds `latest` by `step_z` times the larger of its
Poisson standard deviation and the root mean square of what it read at the points of the
trend window older than one rate window (bursty traffic moves it without any step).

Falling demand is not extrapolated downward: scale-down is the stabiliser's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
    step_min_s: float = 10.0
    """The step term reads the rate of at least the newest this many seconds."""
    step_z: float | None = 4.0
    """Poisson standard deviations by which the step estimate must exceed `latest`;
    None: no step term."""


@dataclass(frozen=True, slots=True)
class Forecast:
    rate_rps: float
    level_rps: float
    slope_rps_per_s: float
    method: str
    """Which term won: 'latest', 'level', 'trend', 'burst' or 'step'."""
    step_s: float = 0.0
    """The newest seconds the 'step' term read (0 unless it won)."""
    backlog_rps: float = 0.0
    """Included in `rate_rps`: the rate that drains the pool's waiting queue (`backlog.py`)."""
    backlog_drain_s: float = 0.0
    """The time the backlog is drained over (seconds); 0 when there is none."""
    headroom_rps: float = 0.0
    """Included in `rate_rps`: capacity held above the forecast (`with_headroom`)."""

    @property
    def forecast_rps(self) -> float:
        """The forecast alone: `rate_rps` without the backlog's drain and the headroom."""
        return self.rate_rps - self.backlog_rps - self.headroom_rps


def with_headroom(forecast: Forecast, headroom: float) -> Forecast:
    """The forecast with the tier's standing headroom (`Scaling.headroom`) added: capacity
    for `headroom` times the forecast rate, held before any surge the forecast cannot see
    yet. A flash crowd behind a cold start is served by the replicas already Ready:
    `bench/reactive_bound.py` puts the standing capacity that meets two of the report
    seed's flash crowds (8.7 and 12.5 -> 40 req/s, 180 s cold starts) at x3.00 and x3.25
    the rate (docs/bench/NOTES.md)."""
    if headroom <= 1.0:
        return forecast
    extra_rps = forecast.rate_rps * (headroom - 1.0)
    return replace(forecast, rate_rps=forecast.rate_rps + extra_rps, headroom_rps=extra_rps)


def forecast_rate(
    latest_rps: float,
    history: Sequence[tuple[float, float]],
    now_s: float,
    horizon_s: float,
    config: ForecastConfig = ForecastConfig(),
    window_s: float = 0.0,
) -> Forecast:
    """Rate to provision for `horizon_s` from now; `history` is (time_s, rate_rps), oldest
    first, each a rate over `window_s` seconds (0: unknown, no step term)."""
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
    step = step_rate(latest, history, now_s, window_s, config)
    if step is not None:
        candidates["step"] = step[0]
    method = max(candidates, key=lambda k: candidates[k])
    return Forecast(
        max(candidates[method], 0.0),
        level,
        slope,
        method,
        step_s=step[1] if step is not None and method == "step" else 0.0,
    )


def step_rate(
    latest_rps: float,
    history: Sequence[tuple[float, float]],
    now_s: float,
    window_s: float,
    config: ForecastConfig = ForecastConfig(),
) -> tuple[float, float] | None:
    """(rate of the newest D seconds, D) recovered from the window rate's change, where
    it exceeds `latest_rps` beyond Poisson noise; None otherwise (see module doc)."""
    if config.step_z is None or window_s <= 0.0:
        return None
    got = _step_estimate(latest_rps, history, len(history), now_s, window_s, config)
    if got is None:
        return None
    recent, span_s, leaving_rps = got
    poisson = ((max(recent, 0.0) + leaving_rps) / span_s) ** 0.5
    if recent - latest_rps <= config.step_z * max(
        poisson, _seen_noise(history, now_s, window_s, config), 1.0 / span_s
    ):
        return None
    return recent, span_s


def _step_estimate(
    latest_rps: float,
    history: Sequence[tuple[float, float]],
    end: int,
    now_s: float,
    window_s: float,
    config: ForecastConfig,
) -> tuple[float, float, float] | None:
    """(estimated rate of the newest seconds, how many seconds, the rate taken as leaving)
    from `history[:end]` (oldest first): scanned from its newest point back to the first
    one a window old, so a long history costs no more than one window of it."""
    then: tuple[float, float] | None = None
    leaving_rps: float | None = None
    for j in range(end - 1, -1, -1):
        t, r = history[j]
        age_s = now_s - t
        if then is None:
            if age_s < config.step_min_s:
                continue
            if age_s > window_s / 2.0:
                return None
            then = (t, r)
        if age_s >= window_s:
            leaving_rps = r
            break
    if then is None:
        return None
    then_s, then_rps = then
    span_s = now_s - then_s
    if leaving_rps is None:
        leaving_rps = then_rps
    return leaving_rps + window_s / span_s * (latest_rps - then_rps), span_s, leaving_rps


def _seen_noise(
    history: Sequence[tuple[float, float]], now_s: float, window_s: float, config: ForecastConfig
) -> float:
    """Root mean square of what the step estimate read above (or below) the window rate at
    the points of the trend window older than one rate window: how much it moves on this
    tier's traffic without a step. Bursty arrivals (the Azure code trace's inter-arrival
    cv is 13) move it far more than Poisson noise, and a step must stand out from that
    too. The newest window is left out: a step's own reads lie there until the window has
    caught up, and counting them would hide the step at the next tick."""
    deviations = []
    for i in range(len(history) - 1):
        t, r = history[i]
        if not window_s <= now_s - t <= config.trend_window_s:
            continue
        got = _step_estimate(r, history, i + 1, t, window_s, config)
        if got is not None:
            deviations.append(got[0] - r)
    if not deviations:
        return 0.0
    return float(np.sqrt(np.mean(np.square(deviations))))
