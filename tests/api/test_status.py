"""SLOTier status from a decision and an observation: shape, conditions, transition times."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.crd_schema_eval import validate
from tierscale.api.crd import openapi_schema
from tierscale.api.models import SLOTierStatus
from tierscale.api.status import between_buckets, build_status, invalid_spec_status, rfc3339
from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.domain.vllm import ITL_BUCKETS_S
from tierscale.policy import planner
from tierscale_predictor import latency, profiles

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
        "needed_replicas": 3,
        "slo_breached": False,
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
        "EngineArgsFit",
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
    decision = _decision(
        reason=Reason.BUDGET_LIMITED,
        bound_by=(Reason.BUDGET_LIMITED,),
        unserved_rate_rps=4.0,
        slo_breached=True,
    )
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
        build_status(TIER, _decision(slo_breached=True), _observation(attainment_frac=0.9), now=T0)
    )
    assert conditions["SLOMet"]["status"] == "False"
    assert "attainment 0.9 (target 0.99)" in conditions["SLOMet"]["message"]


def test_slo_met_is_the_planners_verdict_not_any_miss() -> None:
    # p99 TTFT 320 ms over a 300 ms target, within what the planner calls sampling noise.
    slow = _observation(ttft_s=0.32)
    met = _conditions(build_status(TIER, _decision(slo_breached=False), slow, now=T0))
    assert (met["SLOMet"]["status"], met["SLOMet"]["reason"]) == ("True", "WithinSLO")
    assert "p99 TTFT 320 ms (target 300 ms)" in met["SLOMet"]["message"]
    assert "sampling noise" in met["SLOMet"]["message"]
    held = _conditions(build_status(TIER, _decision(slo_breached=None), slow, now=T0))
    assert (held["SLOMet"]["status"], held["SLOMet"]["reason"]) == ("Unknown", "NotJudged")


def test_a_miss_the_histogram_buckets_do_not_prove_is_not_judged_and_says_why() -> None:
    # p99 TPOT read 29 ms inside vLLM's 25-50 ms bucket against a 30 ms SLO.
    seen = _observation(tpot_s=0.029, attainment_frac=0.9, attainment_most_frac=1.0)
    decision = _decision(slo_breached=None, slo_unproven=True)
    slo = _conditions(build_status(TIER, decision, seen, now=T0))["SLOMet"]
    assert (slo["status"], slo["reason"]) == ("Unknown", "MissNotProven")
    assert "allow up to 1 attainment" in slo["message"] and "no miss proven" in slo["message"]


def test_budget_limited_is_true_only_when_the_budget_bound() -> None:
    at_max = _decision(
        reason=Reason.AT_MAX,
        bound_by=(Reason.AT_MAX,),
        unserved_rate_rps=4.0,
        message="8 -> 8 replicas: forecast 12.00 req/s needs 10 replicas; maxReplicas allows 8",
    )
    condition = _conditions(build_status(TIER, at_max, _observation(), now=T0))["BudgetLimited"]
    assert (condition["status"], condition["reason"]) == ("False", "AtMaxReplicas")
    assert "maxReplicas allows 8" in condition["message"]
    # The budget bound first, then the step limit decided: the budget still counts.
    stepped = _decision(
        reason=Reason.SCALE_UP_LIMITED,
        bound_by=(Reason.BUDGET_LIMITED, Reason.SCALE_UP_LIMITED),
        unserved_rate_rps=2.0,
    )
    condition = _conditions(build_status(TIER, stepped, _observation(), now=T0))["BudgetLimited"]
    assert (condition["status"], condition["reason"]) == ("True", "BudgetLimited")


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


def test_slo_met_and_the_planners_breach_guard_agree() -> None:
    """One slow request in 30 is noise to the planner, and so to SLOMet; 5 % of 600 is not."""
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    noisy = _observation(rate_rps=0.5, ttft_s=0.9, attainment_frac=29 / 30, window_requests=None)
    real = _observation(rate_rps=10.0, ttft_s=0.9, attainment_frac=0.95, window_requests=600.0)
    for obs, met in ((noisy, "True"), (real, "False")):
        seen = replace(obs, sampled_at_s=995.0, current_replicas=2, ready_replicas=2)
        plan = planner.plan(
            tiers=[TIER], observations=Observations({TIER.key: seen}), model=model, now_s=1000.0
        )
        decision = plan.decisions[TIER.key]
        assert (decision.reason is Reason.SLO_BREACH) == (met == "False")
        condition = _conditions(build_status(TIER, decision, seen, now=T0))["SLOMet"]
        assert condition["status"] == met


def test_an_slo_between_vllms_buckets_is_named_in_the_spec_condition() -> None:
    # 300 ms TTFT and 30 ms TPOT both fall inside vLLM's buckets (250-500 ms, 25-50 ms):
    # attainment there is interpolated, and the condition says which edges are exact.
    spec = _conditions(build_status(TIER, _decision(), _observation(), now=T0))["InvalidSpec"]
    assert (spec["status"], spec["reason"]) == ("False", "SpecValid")
    assert (
        "TTFT SLO 300ms lies between vLLM's time-to-first-token buckets 250ms and 500ms"
        in (spec["message"])
    )
    assert (
        "TPOT SLO 30ms lies between vLLM's time-per-output-token buckets 25ms and 50ms"
        in (spec["message"])
    )
    on_edges = replace(TIER, slo=replace(TIER.slo, ttft_s=0.25, tpot_s=0.05))
    exact = _conditions(build_status(on_edges, _decision(), _observation(), now=T0))
    assert exact["InvalidSpec"]["message"] == "The spec is valid."


@pytest.mark.parametrize(
    ("bound_s", "expected"),
    [
        (0.02, (0.01, 0.025)),
        (0.025, (None, None)),
        (0.0250000000001, (None, None)),
        (0.005, (None, None)),  # below the first bucket
        (100.0, (None, None)),  # above the last
    ],
)
def test_between_buckets(bound_s: float, expected: tuple[float | None, float | None]) -> None:
    assert between_buckets(bound_s, ITL_BUCKETS_S) == expected


def test_engine_argument_advice_is_a_condition_and_never_planned_tiers_get_none() -> None:
    advice = (
        "with --max-num-batched-tokens 512 --max-num-seqs 512 one replica would serve 5.51"
        " req/s within the SLO, against 1.28 with --max-num-batched-tokens 8192"
        " --max-num-seqs 1024 (TPOT binds)"
    )
    advised = _conditions(build_status(TIER, _decision(engine_advice=advice), None, now=T0))
    condition = advised["EngineArgsFit"]
    assert (condition["status"], condition["reason"]) == ("False", "EngineArgsAdvised")
    assert condition["message"].startswith("With --max-num-batched-tokens 512 ")
    assert "tierscale never changes them" in condition["message"]
    fit = _conditions(build_status(TIER, _decision(), None, now=T0))["EngineArgsFit"]
    assert (fit["status"], fit["reason"]) == ("True", "EngineArgsFit")
    held = _decision(reason=Reason.HOLD_STALE_METRICS, engine_advice=None)
    unknown = _conditions(build_status(TIER, held, None, now=T0))["EngineArgsFit"]
    assert (unknown["status"], unknown["reason"]) == ("Unknown", "NotPlanned")
