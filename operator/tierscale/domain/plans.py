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
    """Forecast demand the plan leaves unserved (GPU budget, maxReplicas, or an SLO no
    replica meets at these request lengths)."""
    predicted_ttft_s: float | None = None
    """Predicted TTFT at the SLO percentile on this tier's own pool at the planned load."""
    predicted_tpot_s: float | None = None
    capacity_rps_per_replica: float = 0.0
    """Highest rate one replica of this pool sustains within the pool's SLO."""
    spill_in_rps: float = 0.0
    """Looser tiers' traffic routed onto this tier's pool now (what `weights_by_pool` sends)."""
    spill_out_rps: float = 0.0
    """This tier's traffic routed onto tighter pools now (what `weights_by_pool` sends)."""
    admission_cap_rps: float | None = None
    """Rate the pool can take now (ready replicas); Envoy caps concurrency from it."""
    gpus: int = 0
    model_correction: tuple[float, float] = (1.0, 1.0)
    """(TTFT, TPOT) multipliers the pool's latency model runs with, learned online."""
    needed_replicas: int | None = None
    """Replicas the tier's own pool needs for its forecast demand at
    `capacity_rps_per_replica`, before spillover, the budget, min/maxReplicas, the breach
    guard and the stabiliser; None when not planned (held) or when no replica meets the SLO."""
    bound_by: tuple[Reason, ...] = ()
    """Every rule that set or cut the replicas on the way from `needed_replicas` to
    `desired_replicas`, in pipeline order; `reason` is the one that decided them."""
    slo_breached: bool | None = None
    """The planner's verdict on the observed window: the SLO was missed beyond sampling
    noise (True), met or missed within noise (False), or not judged (None: no traffic or
    no latency/attainment observed, or the tier is held)."""
    slo_unproven: bool = False
    """Not judged (`slo_breached` None) because the window misses only by the linear
    estimate inside vLLM's histogram buckets, which also allow the SLO met, where the
    model predicted what they show."""
    planned_spill_in_rps: float = 0.0
    """Looser tiers' traffic the plan puts on this pool once its replicas are ready."""
    planned_spill_out_rps: float = 0.0
    """This tier's traffic the plan puts on tighter pools' spare capacity."""
    engine_advice: str | None = None
    """vLLM arguments the predictor says would let one replica of this pool serve at least
    1.25x as much within the SLO (TPOT bound by prefill chunks, or the batch by
    max_num_seqs), with both capacities; None when none tried does (`policy.advice`).
    Advice only: the plan never changes a Deployment's arguments."""


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
    bias_floor_by_tier: Mapping[str, float] = field(default_factory=dict)
    """tier key -> the least bias the pool's observed breaches prove (its model capacity
    over the per-replica load it breached at), decaying (`breach.floor_after`)."""
    floor_capacity_by_tier: Mapping[str, float] = field(default_factory=dict)
    """tier key -> the model's capacity per replica of the tier's own pool (requests/s, no
    bias) when its bias floor was proven: the floor shrinks with it (`breach.floor_now`)."""
    correction_by_tier: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """tier key -> (TTFT, TPOT) multipliers of the pool's latency model, learned online
    from the pool's observed percentiles (1.0 = trust the fitted model)."""
    batch_limit_by_tier: Mapping[str, int] = field(default_factory=dict)
    """tier key -> the batch limit (running requests per replica) the pool's queue showed
    its engine runs with, where below the model's (`policy/batch_limit.py`)."""
    queue_plateau_by_tier: Mapping[str, float] = field(default_factory=dict)
    """tier key -> running requests per Ready replica the last decision saw held with a
    queue, awaiting confirmation by the next (`policy/batch_limit.py`)."""
    backlog_by_tier: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """tier key -> (time_s, waiting requests) of the latest decision, within its metrics
    window, that saw the pool's queue longer than its Ready replicas serve within the
    TTFT SLO: the backlog later windows carry (`breach.backlog_share`)."""
    sized_up_at_by_tier: Mapping[str, float] = field(default_factory=dict)
    """tier key -> time of the planner's first decision for the tier, where that decision
    raised the pool above the replicas it found: the part of a metrics window before it
    shows a size the planner had not chosen (`breach.inherited_size_share`); dropped once
    the window began after it. A tier whose first decision did not raise it (or decided
    before this field existed) has none: the planner chose the size it found."""


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
