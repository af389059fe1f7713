"""Why a decision was taken.

One `Reason` value feeds the status condition, the Kubernetes Event and the metric label,
so the three never disagree about what happened. The planner picks it from what actually
set the replicas on the way from the tier's need to its desired count: each binding rule
(budget, maxReplicas, step limits, stabilisation, hold, conflict) is its own reason, and
the decision's message names the number that bound (docs/planner.md, "Explain").
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Reason codes, ordered roughly from 'nothing to do' to 'something is wrong'."""

    STEADY = "Steady"
    """Desired replicas equal current replicas and the need; nothing bound."""
    FORECAST_UP = "ForecastUp"
    """Forecast demand over the cold-start horizon needs more replicas: scale up now."""
    SCALE_DOWN = "ScaleDown"
    """Demand has stayed lower for the whole stabilisation window: scale down to the need."""
    STABILIZED = "Stabilized"
    """Fewer replicas would do, but the stabilisation window has not passed yet, or the
    requests already in the pool need the replicas they run on."""
    SCALE_UP_LIMITED = "ScaleUpLimited"
    """More replicas are needed than `maxScaleUpReplicas` adds in one decision."""
    SCALE_DOWN_LIMITED = "ScaleDownLimited"
    """Fewer replicas would do, but `maxScaleDownReplicas` removes only so many per decision."""
    SPILLOVER = "Spillover"
    """Part of this tier's traffic is planned onto a tighter tier's spare capacity (or, for
    a lender, its pool kept to its own need carries other tiers' traffic first)."""
    SLO_BREACH = "SLOBreach"
    """Observed latency broke the SLO beyond sampling noise although the model predicted
    it would not: one replica more than runs now, and a learned bias."""
    BUDGET_LIMITED = "BudgetLimited"
    """The GPU budget cut the replicas; lower priorities are degraded first."""
    AT_MAX = "AtMaxReplicas"
    """maxReplicas cut the replicas (the need, or what the breach guard asked for)."""
    AT_MIN = "AtMinReplicas"
    """minReplicas holds more replicas than the demand needs."""
    SLO_UNATTAINABLE = "SLOUnattainable"
    """No replica of the tier's pool meets its SLO at the observed request lengths, even
    idle: its demand is unserved (or spilled onto a tighter pool that can serve it)."""
    SOLVER_FAILED = "SolverFailed"
    """The optimiser returned no allocation although one exists (no GPU cap is below the
    minimum replicas): every pool keeps its minimum and the demand counts as unserved."""
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
        Reason.SLO_UNATTAINABLE,
        Reason.SOLVER_FAILED,
        Reason.HOLD_STALE_METRICS,
        Reason.INVALID_SPEC,
        Reason.CONFLICT,
    }
)
"""Reasons a person should look at: their Events are Warnings, the others Normal."""

NOT_PLANNED = frozenset({Reason.HOLD_STALE_METRICS, Reason.INVALID_SPEC, Reason.CONFLICT})
"""Reasons of tiers the plan did not decide: held on stale metrics, invalid, or scaled by
another writer. Their Deployments are not scaled."""
