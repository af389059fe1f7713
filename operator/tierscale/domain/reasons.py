"""Why a decision was taken.

One `Reason` value feeds the status condition, the Kubernetes Event and the metric label,
so the three never disagree about what happened.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Reason codes, ordered roughly from 'nothing to do' to 'something is wrong'."""

    STEADY = "Steady"
    """Desired replicas equal current replicas; demand is served within the SLO."""
    FORECAST_UP = "ForecastUp"
    """Forecast demand over the cold-start horizon needs more replicas: scale up now."""
    SCALE_DOWN = "ScaleDown"
    """Demand has stayed lower for the whole stabilisation window."""
    STABILIZED = "Stabilized"
    """Fewer replicas would do, but the stabilisation window has not passed yet."""
    SPILLOVER = "Spillover"
    """Part of this tier's traffic is served by a tighter tier's spare capacity."""
    SLO_BREACH = "SLOBreach"
    """Observed latency broke the SLO although the model predicted it would not."""
    BUDGET_LIMITED = "BudgetLimited"
    """The GPU budget cannot serve all demand; lower priorities are degraded first."""
    AT_MAX = "AtMaxReplicas"
    """The tier needs more than maxReplicas."""
    AT_MIN = "AtMinReplicas"
    """The tier is held at minReplicas."""
    HOLD_STALE_METRICS = "HoldStaleMetrics"
    """Metrics are missing or stale: the last plan is kept, nothing scales."""
    INVALID_SPEC = "InvalidSpec"
    """The SLOTier spec is invalid; the tier is not planned and its Deployment is untouched."""
    CONFLICT = "Conflict"
    """Another writer (an HPA, a KEDA ScaledObject, a person) sets the Deployment's replicas:
    tierscale plans around its replicas and does not write them until it is gone."""


WARNING_REASONS = frozenset(
    {
        Reason.SLO_BREACH,
        Reason.BUDGET_LIMITED,
        Reason.AT_MAX,
        Reason.HOLD_STALE_METRICS,
        Reason.INVALID_SPEC,
        Reason.CONFLICT,
    }
)
"""Reasons a person should look at: their Events are Warnings, the others Normal."""
