"""SLOTier status from a decision and an observation: shape, conditions, transition times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.crd_schema_eval import validate
from tierscale.api.crd import openapi_schema
from tierscale.api.models import SLOTierStatus
from tierscale.api.status import build_status, invalid_spec_status, rfc3339
from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Slo, Tier

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
TIER = Tier(
    name="ide",
    namespace="inference",
    model="m",
    slo=Slo(ttft_s=0.3, tpot_s=0.03, percentile=99.0, attainment_frac=0.99),
    pool=Pool(deployment="d", max_replicas=8),
)


def _decision(**changes: Any) -> TierDecision:
    fields: dict[str, Any] = {
        "tier_key": TIER.key,
        "desired_replicas": 3,
        "weights_by_pool": {TIER.key: 1.0},
        "reason": Reason.FORECAST_UP,
        "message": "Forecast 12 req/s over the 120 s cold start needs 3 replicas (was 2).",
        "forecast_rate_rps": 12.0,
        "served_rate_rps": 12.0,
        "predicted_ttft_s": 0.2,
        "predicted_tpot_s": 0.025,
        "spill_in_rps": 1.5,
    }
    return TierDecision(**(fields | changes))


def _observation(**changes: Any) -> TierObservation:
    fields: dict[str, Any] = {
        "tier_key": TIER.key,
        "sampled_at_s": 100.0,
        "rate_rps": 11.0,
        "window_s": 60.0,
        "prompt_tokens_mean": 900.0,
        "output_tokens_mean": 120.0,
        "ready_replicas": 2,
        "ttft_s": 0.22,
        "tpot_s": 0.026,
        "attainment_frac": 0.995,
    }
    return TierObservation(**(fields | changes))


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_status_has_every_section_and_fits_the_crd_schema() -> None:
    status = build_status(TIER, _decision(), _observation(), now=T0, generation=4)
    assert status["observedGeneration"] == 4
    assert status["demand"] == {
        "rateRps": 11.0,
        "promptTokensMean": 900.0,
        "outputTokensMean": 120.0,
    }
    assert status["replicas"] == {"desired": 3, "ready": 2}
    assert status["latency"] == {
        "predictedTtftSeconds": 0.2,
        "predictedTpotSeconds": 0.025,
        "observedTtftSeconds": 0.22,
        "observedTpotSeconds": 0.026,
    }
    assert status["spillover"] == {"inRps": 1.5, "outRps": 0.0}
    assert status["lastDecision"] == {
        "reason": "ForecastUp",
        "message": _decision().message,
        "time": "2026-11-21T12:00:00Z",
    }
    assert [c["type"] for c in status["conditions"]] == [
        "Ready",
        "SLOMet",
        "BudgetLimited",
        "ModelCalibrated",
        "InvalidSpec",
        "Conflict",
        "Hold",
    ]
    SLOTierStatus.model_validate(status)
    assert validate(openapi_schema()["properties"]["status"], status, "status") == []


def test_condition_verdicts() -> None:
    conditions = _conditions(build_status(TIER, _decision(), _observation(), now=T0))
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["message"] == "2/3 replicas ready."
    assert conditions["SLOMet"]["status"] == "True"
    assert conditions["BudgetLimited"]["status"] == "False"
    assert conditions["ModelCalibrated"]["status"] == "True"
    assert conditions["InvalidSpec"]["status"] == "False"


def test_breach_budget_and_bias_are_reported() -> None:
    decision = _decision(reason=Reason.BUDGET_LIMITED, unserved_rate_rps=4.0)
    observation = _observation(ttft_s=0.45, ready_replicas=3)
    conditions = _conditions(build_status(TIER, decision, observation, now=T0))
    assert conditions["Ready"]["status"] == "True"
    assert (conditions["SLOMet"]["status"], conditions["SLOMet"]["reason"]) == (
        "False",
        "SLOBreach",
    )
    assert "p99 TTFT 450 ms (target 300 ms)" in conditions["SLOMet"]["message"]
    assert conditions["BudgetLimited"]["status"] == "True"
    assert conditions["BudgetLimited"]["message"].startswith("4 of 12 req/s")
    assert (conditions["ModelCalibrated"]["status"], conditions["ModelCalibrated"]["reason"]) == (
        "False",
        "ModelBias",
    )


def test_low_attainment_alone_breaks_the_slo() -> None:
    conditions = _conditions(
        build_status(TIER, _decision(), _observation(attainment_frac=0.9), now=T0)
    )
    assert conditions["SLOMet"]["status"] == "False"


def test_missing_observations_make_conditions_unknown() -> None:
    status = build_status(TIER, _decision(predicted_ttft_s=None), None, now=T0)
    conditions = _conditions(status)
    for kind in ("Ready", "SLOMet", "ModelCalibrated"):
        assert conditions[kind]["status"] == "Unknown", kind
    assert status["replicas"] == {"desired": 3}
    assert "attainment" not in status and status["demand"] == {}
    assert validate(openapi_schema()["properties"]["status"], status, "status") == []


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    first = build_status(TIER, _decision(), _observation(), now=T0)
    later = T0 + timedelta(minutes=5)
    second = build_status(
        TIER,
        _decision(),
        _observation(ready_replicas=3),
        now=later,
        previous_conditions=first["conditions"],
    )
    before, after = _conditions(first), _conditions(second)
    assert after["Ready"]["lastTransitionTime"] == rfc3339(later)
    for kind in ("SLOMet", "BudgetLimited", "ModelCalibrated", "InvalidSpec"):
        assert after[kind]["lastTransitionTime"] == before[kind]["lastTransitionTime"], kind
    assert after["SLOMet"]["lastTransitionTime"] == "2026-11-21T12:00:00Z"


def test_invalid_spec_status_keeps_other_conditions() -> None:
    first = build_status(TIER, _decision(), _observation(), now=T0)
    status = invalid_spec_status(
        "spec.pool.minReplicas: Invalid value: -1",
        now=T0 + timedelta(seconds=30),
        generation=5,
        previous_conditions=first["conditions"],
    )
    conditions = _conditions(status)
    assert conditions["InvalidSpec"]["status"] == "True"
    assert conditions["InvalidSpec"]["lastTransitionTime"] == "2026-11-21T12:00:30Z"
    assert conditions["Ready"]["reason"] == "InvalidSpec"
    assert conditions["SLOMet"] == _conditions(first)["SLOMet"]
    assert status["lastDecision"]["reason"] == "InvalidSpec"
    assert validate(openapi_schema()["properties"]["status"], status, "status") == []


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_status(TIER, _decision(), None, now=datetime(2026, 1, 1))


def test_an_online_correction_is_named_in_the_calibration_condition() -> None:
    plain = _conditions(build_status(TIER, _decision(), _observation(), now=T0))
    corrected = _conditions(
        build_status(TIER, _decision(model_correction=(1.0, 1.18)), _observation(), now=T0)
    )
    assert "corrected" not in plain["ModelCalibrated"]["message"]
    assert "TPOT x1.18" in corrected["ModelCalibrated"]["message"]
