"""What the planner learns about each pool's latency model: online calibration.

Opt-in (`PlannerConfig.calibrate_tpot`, `calibrate_ttft`): each pool's model is corrected
towards the percentiles the pool itself showed; the multipliers are state
(`PlannerState.correction_by_tier`), carried from one decision to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
        if seen is not None:
            learned = calibration.recalibrate(model, seen, cfg.calibration).model.correction
            model = model.with_correction(
                latency.Correction(
                    _on_grid(learned.ttft_mult, cfg.calibration_step),
                    _on_grid(learned.tpot_mult, cfg.calibration_step),
                )
            )
        out[key] = model
    return out


def _calibration_sample(t: LiveTier, cfg: PlannerConfig) -> calibration.Observed | None:
    obs = t.observation
    pool_rate = obs.pool_rate_rps
    if pool_rate is None or pool_rate <= 0.0:
        return None
    tpot_seen = cfg.calibrate_tpot and obs.tpot_s is not None
    ttft_seen = cfg.calibrate_ttft and obs.ttft_s is not None
    if not (tpot_seen or ttft_seen):
        return None
    if t.ready_replicas < 1 or t.ready_replicas != t.current_replicas:
        return None  # replicas loading or draining: the window mixes two pool sizes
    if t.learning_paused_s is not None:
        return None  # a new replica's first minute is a cold cache, not the steady state
    if t.shortfall_planned:
        return None  # a pool knowingly run short is slow by plan, not by model error
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


def _on_grid(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def multipliers(model: latency.LatencyModel) -> tuple[float, float]:
    return (model.correction.ttft_mult, model.correction.tpot_mult)
