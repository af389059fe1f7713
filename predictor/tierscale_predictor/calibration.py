"""Online recalibration: nudge the model towards what the replicas actually show.

Input: the percentile TTFT/TPOT a pool showed (vLLM histograms) at a known load and
request shape. The model's raw prediction at that load is compared with the observation;
the ratio is smoothed in log space (EWMA, so one noisy window cannot swing the plan) and
clamped (a model that is off by more than the clamp needs refitting, not patching). The
multipliers apply to every later prediction and capacity computed from the model. Pure:
returns a new model and the calibration error before and after, touches nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tierscale_predictor import latency
from tierscale_predictor.latency import Correction, LatencyModel, WorkloadShape


@dataclass(frozen=True, slots=True)
class Observed:
    """What a pool showed over one window."""

    rate_rps: float
    """Per-replica request rate during the window."""
    shape: WorkloadShape
    percentile: float
    ttft_s: float | None
    tpot_s: float | None


@dataclass(frozen=True, slots=True)
class CalibrationSettings:
    min_mult: float = 0.5
    max_mult: float = 3.0
    smoothing: float = 0.3
    """Weight of the newest observation in the log-space EWMA (0 = ignore, 1 = jump)."""


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    model: LatencyModel
    ttft_error_before: float | None
    """predicted / observed - 1 with the old correction (None: not observed/predictable)."""
    ttft_error_after: float | None
    tpot_error_before: float | None
    tpot_error_after: float | None
    note: str = ""


def _updated(
    old_mult: float,
    predicted: float,
    observed: float | None,
    settings: CalibrationSettings,
) -> float:
    if observed is None or observed <= 0.0 or not math.isfinite(predicted) or predicted <= 0:
        return old_mult
    raw = predicted / old_mult
    target = observed / raw
    log_mult = (1.0 - settings.smoothing) * math.log(old_mult) + settings.smoothing * math.log(
        target
    )
    return min(max(math.exp(log_mult), settings.min_mult), settings.max_mult)


def _error(predicted: float, observed: float | None) -> float | None:
    if observed is None or observed <= 0.0 or not math.isfinite(predicted):
        return None
    return predicted / observed - 1.0


def recalibrate(
    model: LatencyModel,
    observed: Observed,
    settings: CalibrationSettings | None = None,
) -> CalibrationResult:
    """One EWMA step of the TTFT and TPOT multipliers towards the observation."""
    cfg = CalibrationSettings() if settings is None else settings
    if not 0.0 <= cfg.smoothing <= 1.0 or not 0.0 < cfg.min_mult <= 1.0 <= cfg.max_mult:
        raise ValueError("need 0 <= smoothing <= 1 and 0 < min_mult <= 1 <= max_mult")
    before = latency.predict(model, observed.rate_rps, observed.shape, observed.percentile)
    if not before.stable:
        return CalibrationResult(
            model,
            None,
            None,
            None,
            None,
            note="the model predicts overload at this rate; refit it instead of correcting",
        )
    correction = Correction(
        ttft_mult=_updated(model.correction.ttft_mult, before.ttft_s, observed.ttft_s, cfg),
        tpot_mult=_updated(model.correction.tpot_mult, before.tpot_s, observed.tpot_s, cfg),
    )
    new_model = model.with_correction(correction)
    after = latency.predict(new_model, observed.rate_rps, observed.shape, observed.percentile)
    clamped = correction.ttft_mult in (cfg.min_mult, cfg.max_mult) or correction.tpot_mult in (
        cfg.min_mult,
        cfg.max_mult,
    )
    return CalibrationResult(
        new_model,
        _error(before.ttft_s, observed.ttft_s),
        _error(after.ttft_s, observed.ttft_s),
        _error(before.tpot_s, observed.tpot_s),
        _error(after.tpot_s, observed.tpot_s),
        note="correction clamped: the model needs refitting" if clamped else "",
    )
