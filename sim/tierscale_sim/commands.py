"""What a scaling policy hands back to the fleet each control interval, and the policy seam.

Mirrors what the operator actuates: Deployment replicas, Envoy route weights and Envoy
circuit-breaker limits. Keeping baselines and tierscale behind one small protocol is what
makes the comparison fair: same traffic, same router, same cold starts, same scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tierscale.domain.observations import Observations


@dataclass(frozen=True, slots=True)
class FleetCommand:
    """One control decision for the whole fleet."""

    desired_replicas_by_pool: Mapping[str, int]
    """pool (owning tier key) -> replicas its Deployment should have."""
    weights_by_tier: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """tier key -> pool -> share of that tier's traffic; a missing tier goes to its own pool."""
    max_concurrent_by_pool: Mapping[str, int] = field(default_factory=dict)
    """pool -> Envoy circuit breaker max_requests (in-flight); missing = unlimited."""


class Policy(Protocol):
    """A scaling policy: sees `Observations`, returns a `FleetCommand`."""

    @property
    def name(self) -> str: ...

    @property
    def instant_scaling(self) -> bool:
        """True only for the oracle bound: replicas serve the moment they are asked for."""
        ...

    def decide(self, now_s: float, observations: Observations) -> FleetCommand: ...


@dataclass(frozen=True, slots=True)
class TierExplanation:
    """Why a policy decided what it did for one tier at one tick, with the numbers it
    compared: what it observed next to what it planned for (None: not known to it)."""

    reason: str
    """A short code, e.g. the planner's `Reason` (`ForecastUp`, `SLOBreach`, ...)."""
    message: str
    """One human sentence."""
    desired_replicas: int
    observed_rate_rps: float | None = None
    planned_rate_rps: float | None = None
    """The demand the decision provisions for (a forecast)."""
    observed_ttft_s: float | None = None
    """At the tier's SLO percentile, over the metrics window."""
    predicted_ttft_s: float | None = None
    """What the policy's model expects at the planned load."""
    observed_tpot_s: float | None = None
    predicted_tpot_s: float | None = None
    capacity_rps_per_replica: float | None = None
    spill_in_rps: float | None = None
    spill_out_rps: float | None = None
    admission_cap_rps: float | None = None
    observed_prompt_tokens_mean: float | None = None
    """Request lengths over the metrics window, as the pool's histograms give them (every
    request the pool finished: spilled-in ones included)."""
    planned_prompt_tokens_mean: float | None = None
    """The lengths the capacities were computed for (smoothed across decisions, or held
    while the pool lends to tiers of other lengths)."""
    observed_prompt_tokens_p99: float | None = None
    planned_prompt_tokens_p99: float | None = None
    observed_output_tokens_mean: float | None = None
    planned_output_tokens_mean: float | None = None
    observed_output_tokens_p99: float | None = None
    planned_output_tokens_p99: float | None = None
    bias: float | None = None
    """The learned factor (>= 1) the pool's capacities are divided by after breaches."""
    bias_floor: float | None = None
    """The least bias the pool's breaches prove, decaying."""
    observed_running_requests: float | None = None
    """Requests running on the pool's replicas when the metrics were read (summed)."""
    observed_waiting_requests: float | None = None
    """Requests waiting in the pool's replicas' queues then (summed)."""
    batch_limit: int | None = None
    """The batch limit (running requests per replica) the pool's queue showed, where one
    was learned (`policy/batch_limit.py`)."""


@runtime_checkable
class Explaining(Protocol):
    """Optional: a policy with reasons says them after each `decide` (the Policy protocol
    itself is unchanged; the fleet asks only policies that have this method)."""

    def explain(self) -> Mapping[str, TierExplanation]:
        """tier key -> why the last decision is what it is."""
        ...
