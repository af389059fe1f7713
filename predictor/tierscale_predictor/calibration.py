"""Online recalibration: nudge the model towards what the replicas actually show.

Input: the percentile TTFT/TPOT a pool showed (vLLM histograms) at a known load and
request shape. The model's raw prediction at that load is compared with the observation.

Two ways, both returning a new model and the error before and after (pure, touches
nothing):
- `recalibrate` (one window): the multiplier moves towards observed/raw by a log-space
  EWMA (one noisy window cannot swing the plan), clamped (a model off by more than the
  clamp needs refitting, not patching); with `mode="additive"` an offset moves towards
  observed - raw instead, clamped to +-`max_add_frac` of the observation.
- `calibrate_windows` (several windows): fits observed = mult x raw + add by least
  squares, but only as far as the evidence goes: the slope needs windows whose raw
  predictions differ by at least `min_spread` (else a single additive offset, or a single
  multiplier, is all the data can say), and both stay inside the same clamps. A missing
  fixed cost is additive, a mis-scaled step model multiplicative; a window at one load
  cannot tell them apart, windows at several loads can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    mode: str = "multiplicative"
    """'multiplicative' or 'additive' (what `recalibrate` moves)."""
    max_add_frac: float = 0.8
    """An additive offset never exceeds this share of the observed latency (either sign)."""
    min_spread: float = 0.2
    """`calibrate_windows` fits a slope only when raw predictions span this much (ratio-1)."""


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
    return ewma_mult(old_mult, observed / raw, settings)


def ewma_mult(old_mult: float, target_mult: float, settings: CalibrationSettings) -> float:
    """One log-space EWMA step of a multiplier towards `target_mult` (> 0), clamped to
    `[min_mult, max_mult]`: the step every multiplicative calibration takes."""
    log_mult = (1.0 - settings.smoothing) * math.log(old_mult) + settings.smoothing * math.log(
        target_mult
    )
    return min(max(math.exp(log_mult), settings.min_mult), settings.max_mult)


def _updated_add(
    old: Correction,
    which: str,
    predicted: float,
    observed: float | None,
    settings: CalibrationSettings,
) -> float:
    old_add = float(getattr(old, f"{which}_add_s"))
    if observed is None or observed <= 0.0 or not math.isfinite(predicted):
        return old_add
    target = old_add + (observed - predicted)
    new = (1.0 - settings.smoothing) * old_add + settings.smoothing * target
    bound = settings.max_add_frac * observed
    return min(max(new, -bound), bound)


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
    old = model.correction
    if cfg.mode == "additive":
        correction = Correction(
            old.ttft_mult,
            old.tpot_mult,
            _updated_add(old, "ttft", before.ttft_s, observed.ttft_s, cfg),
            _updated_add(old, "tpot", before.tpot_s, observed.tpot_s, cfg),
        )
        clamped = any(
            abs(add) >= cfg.max_add_frac * obs - 1e-15
            for add, obs in (
                (correction.ttft_add_s, observed.ttft_s),
                (correction.tpot_add_s, observed.tpot_s),
            )
            if obs is not None and add != 0.0
        )
    elif cfg.mode == "multiplicative":
        # The multiplier scales the model's own prediction; an additive part is kept.
        correction = Correction(
            _updated(old.ttft_mult, before.ttft_s - old.ttft_add_s, _minus(observed.ttft_s,
                     old.ttft_add_s), cfg),
            _updated(old.tpot_mult, before.tpot_s - old.tpot_add_s, _minus(observed.tpot_s,
                     old.tpot_add_s), cfg),
            old.ttft_add_s,
            old.tpot_add_s,
        )  # fmt: skip
        clamped = correction.ttft_mult in (cfg.min_mult, cfg.max_mult) or (
            correction.tpot_mult in (cfg.min_mult, cfg.max_mult)
        )
    else:
        raise ValueError(f"mode must be 'multiplicative' or 'additive', got {cfg.mode!r}")
    new_model = model.with_correction(correction)
    after = latency.predict(new_model, observed.rate_rps, observed.shape, observed.percentile)
    return CalibrationResult(
        new_model,
        _error(before.ttft_s, observed.ttft_s),
        _error(after.ttft_s, observed.ttft_s),
        _error(before.tpot_s, observed.tpot_s),
        _error(after.tpot_s, observed.tpot_s),
        note="correction clamped: the model needs refitting" if clamped else "",
    )


def _minus(value: float | None, offset: float) -> float | None:
    return None if value is None else value - offset


@dataclass(frozen=True, slots=True)
class WindowFit:
    result: CalibrationResult
    ttft_terms: str
    """What the evidence allowed for TTFT: 'mult+add', 'add', 'mult' or 'none'."""
    tpot_terms: str


def calibrate_windows(
    model: LatencyModel,
    windows: Sequence[Observed],
    settings: CalibrationSettings | None = None,
) -> WindowFit:
    """Fit observed = mult x raw + add per latency over several windows, within evidence.

    Raw = the model's prediction without its current correction. The errors reported are
    the mean relative error over the windows before (current correction) and after."""
    cfg = CalibrationSettings() if settings is None else settings
    raw_model = model.with_correction(Correction())
    pairs: dict[str, list[tuple[float, float, float]]] = {"ttft": [], "tpot": []}
    for w in windows:
        raw = latency.predict(raw_model, w.rate_rps, w.shape, w.percentile)
        cur = latency.predict(model, w.rate_rps, w.shape, w.percentile)
        if not (raw.stable and cur.stable):
            continue
        for which, r, c, o in (
            ("ttft", raw.ttft_s, cur.ttft_s, w.ttft_s),
            ("tpot", raw.tpot_s, cur.tpot_s, w.tpot_s),
        ):
            if o is not None and o > 0.0 and r > 0.0:
                pairs[which].append((r, c, o))
    fitted: dict[str, tuple[float, float, str]] = {}
    for which, rows in pairs.items():
        mult = float(getattr(model.correction, f"{which}_mult"))
        add = float(getattr(model.correction, f"{which}_add_s"))
        fitted[which] = _fit_line(rows, mult, add, cfg)
    correction = Correction(
        fitted["ttft"][0], fitted["tpot"][0], fitted["ttft"][1], fitted["tpot"][1]
    )
    errors: dict[str, tuple[float | None, float | None]] = {}
    for which, rows in pairs.items():
        mult, add, _ = fitted[which]
        before = [c / o - 1.0 for _, c, o in rows]
        after = [(mult * r + add) / o - 1.0 for r, _, o in rows]
        errors[which] = (_mean_abs(before), _mean_abs(after))
    result = CalibrationResult(
        model.with_correction(correction),
        errors["ttft"][0],
        errors["ttft"][1],
        errors["tpot"][0],
        errors["tpot"][1],
    )
    return WindowFit(result, fitted["ttft"][2], fitted["tpot"][2])


def _mean_abs(values: Sequence[float]) -> float | None:
    return sum(abs(v) for v in values) / len(values) if values else None


def _fit_line(
    rows: Sequence[tuple[float, float, float]],
    old_mult: float,
    old_add: float,
    cfg: CalibrationSettings,
) -> tuple[float, float, str]:
    if not rows:
        return old_mult, old_add, "none"
    raw = [r for r, _, _ in rows]
    obs = [o for _, _, o in rows]
    bound = cfg.max_add_frac * min(obs)

    def clamp_mult(m: float) -> float:
        return min(max(m, cfg.min_mult), cfg.max_mult)

    def clamp_add(a: float) -> float:
        return min(max(a, -bound), bound)

    n = len(rows)
    spread = max(raw) / min(raw) - 1.0
    if n >= 2 and spread >= cfg.min_spread:
        # Least squares on relative error: minimise sum ((m r + a) / o - 1)^2.
        sxx = sum((r / o) ** 2 for r, o in zip(raw, obs, strict=True))
        sx1 = sum(r / o / o for r, o in zip(raw, obs, strict=True))
        s11 = sum(1.0 / o / o for o in obs)
        sxy = sum(r / o for r, o in zip(raw, obs, strict=True))
        s1y = sum(1.0 / o for o in obs)
        det = sxx * s11 - sx1 * sx1
        if det > 0.0:
            mult = clamp_mult((sxy * s11 - sx1 * s1y) / det)
            add = clamp_add(sum((o - mult * r) / o / o for r, o in zip(raw, obs, strict=True))
                            / s11)  # fmt: skip
            return mult, add, "mult+add"
    if cfg.mode == "additive":
        add = sum((o - old_mult * r) / o / o for r, o in zip(raw, obs, strict=True)) / sum(
            1.0 / o / o for o in obs
        )
        return old_mult, clamp_add(add), "add"
    ratio = sum(o / r for r, o in zip(raw, obs, strict=True)) / n
    return clamp_mult(ratio), old_add, "mult"
