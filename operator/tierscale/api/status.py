"""SLOTier status from a planner decision and what was observed: pure, clock passed in.

Conditions keep their lastTransitionTime while their status does not change, so
`kubectl get slot -o yaml` tells how long a tier has been breaching or budget-limited,
and re-writing the same status every loop is a no-op for watchers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from tierscale.api.models import ConditionType
from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import TierDecision
from tierscale.domain.reasons import NOT_PLANNED, Reason
from tierscale.domain.tiers import Tier
from tierscale.domain.vllm import ITL_BUCKETS_S, TTFT_BUCKETS_S

ConditionStatus = Literal["True", "False", "Unknown"]

CALIBRATION_TOLERANCE_FRAC: Final = 0.25
"""ModelCalibrated is True while observed/predicted latency stays within +-25%."""


def build_status(
    tier: Tier,
    decision: TierDecision,
    observation: TierObservation | None,
    *,
    now: datetime,
    generation: int | None = None,
    previous_conditions: Sequence[Mapping[str, object]] = (),
    routing_rejected: str | None = None,
) -> dict[str, Any]:
    """The full `status` of one SLOTier (camelCase, JSON-ready) after one decision.

    `routing_rejected`: why Envoy refused this decision's routing (the Hold condition
    then says so; the live routing is unchanged)."""
    obs = observation or TierObservation(
        tier_key=tier.key, sampled_at_s=0.0, rate_rps=None, window_s=0.0
    )
    stamp = rfc3339(now)
    fresh: list[_Fresh] = [
        _ready(decision, obs),
        _slo_met(tier, decision, obs),
        _budget_limited(decision),
        _model_calibrated(decision, obs),
        _engine_args_fit(decision),
        _spec_valid(tier),
        _conflict(decision),
        _hold(decision, routing_rejected),
    ]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "demand": _without_none(
            {
                "rateRps": obs.rate_rps,
                "promptTokensMean": obs.prompt_tokens_mean,
                "outputTokensMean": obs.output_tokens_mean,
            }
        ),
        "replicas": _without_none(
            {"desired": decision.desired_replicas, "ready": obs.ready_replicas}
        ),
        "latency": _without_none(
            {
                "predictedTtftSeconds": _short(decision.predicted_ttft_s),
                "predictedTpotSeconds": _short(decision.predicted_tpot_s),
                "observedTtftSeconds": _short(obs.ttft_s),
                "observedTpotSeconds": _short(obs.tpot_s),
            }
        ),
        "attainment": _short(obs.attainment_frac),
        "spillover": {"inRps": decision.spill_in_rps, "outRps": decision.spill_out_rps},
        "errorBudget": _error_budget(tier, obs),
        "conditions": _merge(fresh, previous_conditions, stamp, generation),
        "lastDecision": {
            "reason": decision.reason.value,
            "message": decision.message,
            "time": stamp,
        },
    }
    return _without_none(status)


def invalid_spec_status(
    problem: str,
    *,
    now: datetime,
    generation: int | None = None,
    previous_conditions: Sequence[Mapping[str, object]] = (),
) -> dict[str, Any]:
    """Status of a tier whose spec does not parse: say why, touch nothing else."""
    stamp = rfc3339(now)
    fresh: list[_Fresh] = [
        (ConditionType.INVALID_SPEC, "True", Reason.INVALID_SPEC.value, problem),
        (ConditionType.READY, "False", Reason.INVALID_SPEC.value, "The spec is invalid."),
    ]
    kept = [c for c in previous_conditions if c.get("type") not in {t for t, *_ in fresh}]
    conditions = _merge(fresh, previous_conditions, stamp, generation) + [dict(c) for c in kept]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": sorted(conditions, key=lambda c: _ORDER.index(str(c["type"]))),
        "lastDecision": {"reason": Reason.INVALID_SPEC.value, "message": problem, "time": stamp},
    }
    return _without_none(status)


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format (metav1.Time): UTC, whole seconds, trailing Z."""
    if moment.tzinfo is None:
        raise ValueError("status times must be timezone-aware (got a naive datetime)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- conditions

_Fresh = tuple[ConditionType, ConditionStatus, str, str]
_ORDER: Final = [kind.value for kind in ConditionType]


def _spec_valid(tier: Tier) -> _Fresh:
    """Valid; where an SLO bound lies strictly between two of vLLM's histogram buckets,
    the message says so: attainment inside that bucket is interpolated, not measured (a
    TPOT miss read there may not be one, `policy.breach.unproven`), while a bound on a
    bucket edge is measured exactly."""
    notes = []
    for name, metric, bound_s, buckets in (
        ("TTFT", "time-to-first-token", tier.slo.ttft_s, TTFT_BUCKETS_S),
        ("TPOT", "time-per-output-token", tier.slo.tpot_s, ITL_BUCKETS_S),
    ):
        low_s, high_s = between_buckets(bound_s, buckets)
        if low_s is not None and high_s is not None:
            notes.append(
                f"its {name} SLO {_ms(bound_s)} lies between vLLM's {metric} buckets "
                f"{_ms(low_s)} and {_ms(high_s)}"
            )
    if not notes:
        return ConditionType.INVALID_SPEC, "False", "SpecValid", "The spec is valid."
    detail = "; ".join(notes)
    return (
        ConditionType.INVALID_SPEC,
        "False",
        "SpecValid",
        f"The spec is valid; {detail}: attainment inside a bucket is estimated by "
        "linear interpolation, not measured; an SLO on a bucket edge is measured exactly.",
    )


def between_buckets(
    bound_s: float, buckets_s: Sequence[float]
) -> tuple[float | None, float | None]:
    """(lower, upper) bucket bounds around `bound_s` when it lies strictly between two of
    them; (None, None) on an edge, below the first or above the last."""
    for low_s, high_s in zip(buckets_s, buckets_s[1:], strict=False):
        if math.isclose(bound_s, low_s, rel_tol=1e-9) or math.isclose(
            bound_s, high_s, rel_tol=1e-9
        ):
            return None, None
        if low_s < bound_s < high_s:
            return low_s, high_s
    return None, None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000.0:g}ms"


def _ready(decision: TierDecision, obs: TierObservation) -> _Fresh:
    kind = ConditionType.READY
    if obs.ready_replicas is None:
        return kind, "Unknown", "ReplicasUnknown", "Ready replicas were not observed."
    counts = f"{obs.ready_replicas}/{decision.desired_replicas} replicas ready."
    if obs.ready_replicas >= decision.desired_replicas:
        return kind, "True", "ReplicasReady", counts
    return kind, "False", "ReplicasStarting", counts


def _slo_met(tier: Tier, decision: TierDecision, obs: TierObservation) -> _Fresh:
    """The planner's own breach verdict (`TierDecision.slo_breached`), with what was seen.

    The same test the breach guard acts on: a miss counts when it is beyond sampling noise
    (attainment below its target by a binomial margin, or, without attainment, a
    percentile more than 10 % over the SLO), so the condition never flips on one slow
    request that the planner rightly ignores.
    """
    kind = ConditionType.SLO_MET
    pct = f"p{tier.slo.percentile:g}"
    seen = []
    if obs.ttft_s is not None:
        seen.append(
            f"{pct} TTFT {obs.ttft_s * 1000:.0f} ms (target {tier.slo.ttft_s * 1000:.0f} ms)"
        )
    if obs.tpot_s is not None:
        seen.append(
            f"{pct} TPOT {obs.tpot_s * 1000:.1f} ms (target {tier.slo.tpot_s * 1000:.1f} ms)"
        )
    if obs.attainment_frac is not None:
        seen.append(f"attainment {obs.attainment_frac:.4g} (target {tier.slo.attainment_frac:g})")
    detail = ", ".join(seen)
    if not seen:
        return kind, "Unknown", "NoObservations", "TTFT/TPOT and attainment were not observed."
    if decision.slo_unproven:
        most = obs.attainment_most_frac
        why = (
            "a miss only read linearly inside vLLM's histogram buckets, which allow up to"
            f" {most if most is not None else 1.0:.4g} attainment, where the model"
            " predicted what they show: no miss proven"
        )
        return kind, "Unknown", "MissNotProven", f"{detail}: {why}."
    if decision.slo_breached is None:
        why = "not judged: no traffic in the window, or the tier is held"
        return kind, "Unknown", "NotJudged", f"{detail}: {why}."
    if decision.slo_breached:
        return kind, "False", Reason.SLO_BREACH.value, f"{detail}: missed beyond sampling noise."
    return kind, "True", "WithinSLO", f"{detail}: within the SLO or its sampling noise."


def _budget_limited(decision: TierDecision) -> _Fresh:
    """True only when the GPU budget bound this tier; maxReplicas is said, not counted."""
    kind = ConditionType.BUDGET_LIMITED
    unserved = (
        f"{decision.unserved_rate_rps:.3g} of {decision.forecast_rate_rps:.3g} req/s unserved"
    )
    bound = set(decision.bound_by) | {decision.reason}
    if Reason.BUDGET_LIMITED in bound:
        return kind, "True", Reason.BUDGET_LIMITED.value, f"{unserved}: {decision.message}."
    if Reason.AT_MAX in bound:
        message = f"Not the GPU budget: maxReplicas bound ({unserved}): {decision.message}."
        return kind, "False", Reason.AT_MAX.value, message
    return kind, "False", "WithinBudget", "The GPU budget did not bind this tier."


def _model_calibrated(decision: TierDecision, obs: TierObservation) -> _Fresh:
    kind = ConditionType.MODEL_CALIBRATED
    pairs = [
        (name, observed / predicted)
        for name, observed, predicted in (
            ("TTFT", obs.ttft_s, decision.predicted_ttft_s),
            ("TPOT", obs.tpot_s, decision.predicted_tpot_s),
        )
        if observed is not None and predicted is not None and predicted > 0.0
    ]
    if not pairs:
        return kind, "Unknown", "NoObservations", "No observed latency to compare with."
    detail = ", ".join(f"{name} observed/predicted {ratio:.2f}" for name, ratio in pairs)
    ttft_mult, tpot_mult = decision.model_correction
    if (ttft_mult, tpot_mult) != (1.0, 1.0):
        detail += f" (model corrected online: TTFT x{ttft_mult:.2f}, TPOT x{tpot_mult:.2f})"
    low, high = 1.0 / (1.0 + CALIBRATION_TOLERANCE_FRAC), 1.0 + CALIBRATION_TOLERANCE_FRAC
    if all(low <= ratio <= high for _, ratio in pairs):
        return kind, "True", "Calibrated", detail + "."
    return kind, "False", "ModelBias", detail + "."


def _engine_args_fit(decision: TierDecision) -> _Fresh:
    """False when the predictor says other vLLM arguments would serve 1.25x as much per
    replica within the SLO (the decision's `engine_advice`, which names them)."""
    kind = ConditionType.ENGINE_ARGS_FIT
    if decision.reason in NOT_PLANNED:
        return kind, "Unknown", "NotPlanned", "The tier was not planned at this decision."
    if decision.engine_advice is not None:
        advice = decision.engine_advice
        message = (
            f"{advice[0].upper()}{advice[1:]}. Set them on the Deployment's vLLM container to"
            " serve more per replica; tierscale never changes them."
        )
        return kind, "False", "EngineArgsAdvised", message
    return (
        kind,
        "True",
        "EngineArgsFit",
        "No tried --max-num-batched-tokens or --max-num-seqs serves 1.25x as much per"
        " replica within the SLO at these request lengths.",
    )


def _conflict(decision: TierDecision) -> _Fresh:
    kind = ConditionType.CONFLICT
    if decision.reason is Reason.CONFLICT:
        return kind, "True", Reason.CONFLICT.value, decision.message
    return kind, "False", "NoOtherWriter", "tierscale is the only writer of the replicas."


def _hold(decision: TierDecision, routing_rejected: str | None) -> _Fresh:
    kind = ConditionType.HOLD
    if decision.reason is Reason.HOLD_STALE_METRICS:
        return kind, "True", Reason.HOLD_STALE_METRICS.value, decision.message
    if routing_rejected is not None:
        message = f"{routing_rejected} The live routing is unchanged."
        return kind, "True", "RoutingRejected", message
    return kind, "False", "Acting", "Metrics are fresh and the plan is carried out."


def _error_budget(tier: Tier, obs: TierObservation) -> dict[str, Any] | None:
    """Share of the window's allowed misses still unspent (negative: overspent)."""
    allowed = 1.0 - tier.slo.attainment_frac
    if obs.attainment_frac is None or allowed <= 0.0:
        return None
    return _without_none(
        {
            "remainingFrac": 1.0 - (1.0 - obs.attainment_frac) / allowed,
            "windowSeconds": obs.window_s,
            "windowRequests": obs.window_requests,
        }
    )


def _merge(
    fresh: Sequence[_Fresh],
    previous: Sequence[Mapping[str, object]],
    stamp: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    before = {str(c.get("type")): c for c in previous}
    merged: list[dict[str, Any]] = []
    for kind, status, reason, message in fresh:
        old = before.get(kind.value)
        unchanged = old is not None and old.get("status") == status
        since = old.get("lastTransitionTime") if old is not None and unchanged else None
        merged.append(
            _without_none(
                {
                    "type": kind.value,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": since if isinstance(since, str) else stamp,
                    "observedGeneration": generation,
                }
            )
        )
    return merged


def _short(value: float | None) -> float | None:
    """Four decimals (0.1 ms, 0.01 %): what `kubectl get` columns can show."""
    return None if value is None else round(value, 4)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
