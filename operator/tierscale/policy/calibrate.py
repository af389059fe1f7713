"""What the planner learns about each pool's latency model: online calibration.

Opt-in (`PlannerConfig.calibrate_tpot`, `calibrate_ttft`): each pool's model is corrected
towards the percentiles the pool itself showed; the multipliers are state
(`PlannerState.correction_by_tier`), carried from one decision to the next.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tierscale.domain import vllm
from tierscale.domain.plans import PlannerState
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier
from tierscale_predictor import calibration, latency


def calibrated(
    live: Sequence[LiveTier],
    models: Mapping[str, latency.LatencyModel],
    prior: PlannerState,
    cfg: PlannerConfig,
) -> dict[str, latency.LatencyModel]:
    """Each pool's model, corrected towards the percentiles the pool itself showed.

    vLLM's histograms are the ground truth the fitted model approximates; the correction
    (an EWMA in log space, clamped, in `tierscale_predictor.calibration`) is learned only
    from windows that can carry it: a steady pool with enough requests beyond the SLO
    percentile, at a load the model calls stable. Otherwise the last correction holds.
    """
    out = dict(models)
    for t in live:
        key = t.tier.key
        ttft_mult, tpot_mult = prior.correction_by_tier.get(key, (1.0, 1.0))
        model = models[key].with_correction(latency.Correction(ttft_mult, tpot_mult))
        seen = _calibration_sample(t, cfg)
        if seen is not None and cfg.calibration_bucket_evidence:
            seen = _proven(model, seen)
        if seen is not None:
            learned = calibration.recalibrate(model, seen, cfg.calibration).model.correction
            model = model.with_correction(
                latency.Correction(
                    _on_grid(learned.ttft_mult, cfg.calibration_step),
                    _on_grid(learned.tpot_mult, cfg.calibration_step),
                )
            )
        mean_mult = _mean_tpot_mult(t, model, cfg) if cfg.calibrate_tpot_mean else None
        if mean_mult is not None:
            model = model.with_correction(
                latency.Correction(
                    model.correction.ttft_mult, _on_grid(mean_mult, cfg.calibration_step)
                )
            )
        out[key] = model
    return out


def _calibration_sample(t: LiveTier, cfg: PlannerConfig) -> calibration.Observed | None:
    obs = t.observation
    tpot_seen = cfg.calibrate_tpot and not cfg.calibrate_tpot_mean and obs.tpot_s is not None
    ttft_seen = cfg.calibrate_ttft and obs.ttft_s is not None
    if not (tpot_seen or ttft_seen) or not _steady(t):
        return None
    pool_rate = obs.pool_rate_rps or 0.0
    beyond = 1.0 - t.tier.slo.percentile / 100.0
    if pool_rate * obs.window_s * beyond < cfg.calibration_min_tail_requests:
        return None
    return calibration.Observed(
        rate_rps=pool_rate / t.ready_replicas,
        shape=t.shape,
        percentile=t.tier.slo.percentile,
        ttft_s=obs.ttft_s if ttft_seen else None,
        tpot_s=obs.tpot_s if tpot_seen else None,
    )


def _steady(t: LiveTier) -> bool:
    """Can the window teach the model anything: a pool serving at a known size, warm,
    not run short by plan and without a queue?"""
    obs = t.observation
    if obs.pool_rate_rps is None or obs.pool_rate_rps <= 0.0:
        return False
    if t.ready_replicas < 1 or t.ready_replicas != t.current_replicas:
        return False  # replicas loading or draining: the window mixes two pool sizes
    if t.first_minute_s is not None:
        return False  # a new replica's first minute is a cold cache, not the steady state
    if t.shortfall_planned:
        return False  # a pool knowingly run short is slow by plan, not by model error
    # A queue: the pool runs at its batch limit, not at the load the model is asked
    # about; overload is not model error (gen-s2027-022: TPOT p99 0.11-0.13 s with
    # TTFT 38-79 s taught the batch pool x2-3 and it never recovered).
    return (obs.waiting_requests or 0.0) < t.ready_replicas


def _mean_tpot_mult(t: LiveTier, model: latency.LatencyModel, cfg: PlannerConfig) -> float | None:
    """The TPOT multiplier one EWMA step nearer what the window's mean TPOT shows
    (`calibrate_tpot_mean`); None where the window cannot teach it. The observed mean less
    the model's mean at the pool's per-replica load (`latency.tpot_mean_s`) is read as an
    offset on every request and expressed as a multiplier of the model's SLO-percentile
    TPOT there: of the two readings (offset, or a step multiplier that moves mean and tail
    alike) the one that moves the tail less, whichever way. Learned as a plain multiplier
    of the mean, it bought GPUs for per-token overheads that barely move the tail (mismatch
    benchmark median 1.31x the oracle's GPU-hours, as an offset 1.29x, default 1.25x).

    The mean is the histogram's sum over its count, exact where a percentile is only known
    to lie in its bucket: on gen-s7-025 with the engine exactly the model, observed over
    predicted mean per window had p10-p90 0.981-0.998 on its batch tier, the p99's ratio
    0.96-2.1 (`bench/tpot_mean_fidelity.py`)."""
    obs = t.observation
    if obs.tpot_mean_s is None or obs.tpot_mean_s <= 0.0 or not _steady(t):
        return None
    pool_rate = obs.pool_rate_rps or 0.0
    if pool_rate * obs.window_s < cfg.calibration_min_mean_requests:
        return None
    rate = pool_rate / t.ready_replicas
    raw_s = latency.tpot_mean_s(model, rate, t.shape)
    raw_tail_s = latency.predict(
        model.with_correction(latency.Correction()), rate, t.shape, t.tier.slo.percentile
    ).tpot_s
    if not (0.0 < raw_s < latency.UNSTABLE_S and 0.0 < raw_tail_s < latency.UNSTABLE_S):
        return None
    # The mean's error as an offset on every request, expressed at the SLO percentile:
    # the smaller of the two readings either way (an offset moves the tail by a smaller
    # share than the mean; a step multiplier moves both alike).
    target = (raw_tail_s + obs.tpot_mean_s - raw_s) / raw_tail_s
    if target <= 0.0:
        return None
    return calibration.ewma_mult(model.correction.tpot_mult, target, cfg.calibration)


def _proven(model: latency.LatencyModel, seen: calibration.Observed) -> calibration.Observed | None:
    """The sample as far as vLLM's histograms prove the model wrong, or None: no evidence.

    A percentile read from a Prometheus histogram is only known to lie in its bucket; the
    value inside it is a linear interpolation. Where the model's prediction lies inside
    the same bucket, the window shows no error at all: TPOT buckets of 25-50 ms put a true
    p99 of 30 ms at ~49.7 ms when nearly every request is in that bucket, and learning x1.6
    from it starved a tier (gen-s2027-022). Where the prediction lies outside, the sample
    moves it only to the bucket's nearer edge, the least error the window proves.
    """
    predicted = latency.predict(model, seen.rate_rps, seen.shape, seen.percentile)
    if not predicted.stable:
        return seen  # recalibrate declines it and says why
    ttft_s = _nearest_in_bucket(seen.ttft_s, predicted.ttft_s, vllm.TTFT_BUCKETS_S)
    tpot_s = _nearest_in_bucket(seen.tpot_s, predicted.tpot_s, vllm.ITL_BUCKETS_S)
    if ttft_s is None and tpot_s is None:
        return None
    return replace(seen, ttft_s=ttft_s, tpot_s=tpot_s)


def _nearest_in_bucket(
    observed_s: float | None, predicted_s: float, bounds: Sequence[float]
) -> float | None:
    """The value in `observed_s`'s histogram bucket nearest `predicted_s`; None when the
    prediction lies in that bucket (or nothing was observed)."""
    if observed_s is None:
        return None
    upper = bisect.bisect_left(bounds, observed_s)
    lo = bounds[upper - 1] if upper > 0 else 0.0
    hi = bounds[upper] if upper < len(bounds) else math.inf
    if lo <= predicted_s <= hi:
        return None
    return lo if predicted_s < lo else hi


def _on_grid(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def multipliers(model: latency.LatencyModel) -> tuple[float, float]:
    return (model.correction.ttft_mult, model.correction.tpot_mult)
