"""What the planner decided, with the reason for every number.

A `Plan` is the only thing the actuators read: the Kubernetes adapter scales Deployments
to `desired_replicas`, the Envoy adapter writes `weights_by_pool` and `admission_cap_rps`,
the status writer copies reasons and predictions into `SLOTier.status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tierscale.domain.reasons import Reason


@dataclass(frozen=True, slots=True)
class TierDecision:
    """The decision for one tier and its pool."""

    tier_key: str
    desired_replicas: int
    """Replicas the tier's own Deployment should have."""
    weights_by_pool: Mapping[str, float]
    """tier key of the pool's owner -> share of this tier's traffic (sums to 1 when served)."""
    reason: Reason
    message: str
    """One human sentence: what changed and why, with the numbers."""
    forecast_rate_rps: float = 0.0
    """Demand the plan provisions for (forecast over the cold-start horizon)."""
    served_rate_rps: float = 0.0
    """Part of the forecast demand the plan can serve within SLO."""
    unserved_rate_rps: float = 0.0
    """Demand left unserved because of the GPU budget or maxReplicas."""
    predicted_ttft_s: float | None = None
    """Predicted TTFT at the SLO percentile on this tier's own pool at the planned load."""
    predicted_tpot_s: float | None = None
    capacity_rps_per_replica: float = 0.0
    """Highest rate one replica of this pool sustains within the pool's SLO."""
    spill_in_rps: float = 0.0
    """Looser tiers' traffic planned onto this tier's pool."""
    spill_out_rps: float = 0.0
    """This tier's traffic planned onto tighter pools."""
    admission_cap_rps: float | None = None
    """Rate the pool can take now (ready replicas); Envoy caps concurrency from it."""
    gpus: int = 0
    model_correction: tuple[float, float] = (1.0, 1.0)
    """(TTFT, TPOT) multipliers the pool's latency model runs with, learned online."""


@dataclass(frozen=True, slots=True)
class PlannerState:
    """What the planner remembers between decisions (returned in every Plan, fed back next time).

    Kept explicit and serialisable so a decision can be replayed from its inputs alone.
    """

    recommendations_by_tier: Mapping[str, tuple[tuple[float, int], ...]] = field(
        default_factory=dict
    )
    """tier key -> (time_s, recommended replicas) over the stabilisation window."""
    last_plan_at_s: float | None = None
    bias_by_tier: Mapping[str, float] = field(default_factory=dict)
    """tier key -> observed/predicted latency ratio learned from SLO breaches (>= 1)."""
    last_decisions: Mapping[str, TierDecision] = field(default_factory=dict)
    """tier key -> last decision, held when metrics go missing."""
    lengths_by_tier: Mapping[str, tuple[float, float, float | None, float | None]] = field(
        default_factory=dict
    )
    """tier key -> smoothed (prompt mean, output mean, prompt p99, output p99) in tokens."""
    correction_by_tier: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """tier key -> (TTFT, TPOT) multipliers of the pool's latency model, learned online
    from the pool's observed percentiles (1.0 = trust the fitted model)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A joint decision for all tiers of one or more models."""

    decided_at_s: float
    decisions: Mapping[str, TierDecision]
    """tier key -> decision."""
    state: PlannerState
    total_gpus: int
    budget_limited: bool = False
    solver_status: str = ""
    """What the optimiser reported (e.g. 'optimal'), for debugging."""
