"""The conditions and fields the operator adds to SLOTier status: Conflict, Hold (stale
metrics, or routing Envoy refused) and the error budget left in the attainment window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.crd_schema_eval import validate
from tierscale.api.crd import openapi_schema
from tierscale.api.models import SLOTierStatus
from tierscale.api.status import build_status
from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Slo, Tier

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
TIER = Tier("ide", "inference", "m", Slo(0.3, 0.03, attainment_frac=0.99), Pool("d"))


def _decision(reason: Reason = Reason.STEADY, message: str = "steady") -> TierDecision:
    return TierDecision(TIER.key, 2, {TIER.key: 1.0}, reason, message)


def _obs(**changes: Any) -> TierObservation:
    fields: dict[str, Any] = {
        "tier_key": TIER.key,
        "sampled_at_s": 1.0,
        "rate_rps": 5.0,
        "window_s": 10.0,
        "attainment_frac": 0.995,
        "window_requests": 400.0,
    }
    return TierObservation(**(fields | changes))


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_steady_tier_is_neither_in_conflict_nor_held() -> None:
    conditions = _conditions(build_status(TIER, _decision(), _obs(), now=T0))
    assert (conditions["Conflict"]["status"], conditions["Hold"]["status"]) == ("False", "False")


def test_another_writer_is_a_conflict_with_the_decisions_message() -> None:
    message = "HorizontalPodAutoscaler d-hpa sets the replicas; delete it to hand them back."
    status = build_status(TIER, _decision(Reason.CONFLICT, message), _obs(), now=T0)
    conflict = _conditions(status)["Conflict"]
    assert (conflict["status"], conflict["reason"], conflict["message"]) == (
        "True",
        "Conflict",
        message,
    )


def test_stale_metrics_hold_the_tier() -> None:
    status = build_status(TIER, _decision(Reason.HOLD_STALE_METRICS, "no metrics"), _obs(), now=T0)
    hold = _conditions(status)["Hold"]
    assert (hold["status"], hold["reason"]) == ("True", "HoldStaleMetrics")


def test_routing_envoy_refused_holds_the_tier_and_says_why() -> None:
    status = build_status(
        TIER, _decision(), _obs(), now=T0, routing_rejected="Envoy rejected: bad address."
    )
    hold = _conditions(status)["Hold"]
    assert hold["status"] == "True" and hold["reason"] == "RoutingRejected"
    assert hold["message"] == "Envoy rejected: bad address. The live routing is unchanged."


@pytest.mark.parametrize(
    ("attainment", "remaining"), [(1.0, 1.0), (0.995, 0.5), (0.99, 0.0), (0.98, -1.0)]
)
def test_error_budget_left_in_the_window(attainment: float, remaining: float) -> None:
    status = build_status(TIER, _decision(), _obs(attainment_frac=attainment), now=T0)
    budget = status["errorBudget"]
    assert budget["remainingFrac"] == pytest.approx(remaining)
    assert (budget["windowSeconds"], budget["windowRequests"]) == (10.0, 400.0)
    SLOTierStatus.model_validate(status)
    assert validate(openapi_schema()["properties"]["status"], status, "status") == []


def test_no_error_budget_without_attainment_or_with_a_100_percent_target() -> None:
    assert "errorBudget" not in build_status(TIER, _decision(), _obs(attainment_frac=None), now=T0)
    strict = Tier("s", "inference", "m", Slo(0.3, 0.03, attainment_frac=1.0), Pool("d"))
    assert "errorBudget" not in build_status(strict, _decision(), _obs(), now=T0)
