"""What the control loop saw, as plain numbers with their timestamps.

The Prometheus adapter (live) and the fleet simulator (offline) both produce exactly this;
the planner never sees PromQL or raw JSON. A value of None means "not measured": the
planner treats it as missing, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TierObservation:
    """One tier's demand and one tier's pool, observed over the last window."""

    tier_key: str
    """`namespace/name` of the tier."""
    sampled_at_s: float
    """When these numbers were read (seconds, same clock as `now_s`)."""
    rate_rps: float | None
    """Requests per second arriving for this tier (Envoy's per-tier route counter)."""
    window_s: float
    """Length of the window behind every rate, quantile and count here (seconds)."""
    prompt_tokens_mean: float | None = None
    output_tokens_mean: float | None = None
    prompt_tokens_p99: float | None = None
    output_tokens_p99: float | None = None
    """Long outputs drive the TPOT tail (more steps share batches with long prefills)."""
    ready_replicas: int | None = None
    """Replicas of this tier's pool that are Ready (serving)."""
    current_replicas: int | None = None
    """`spec.replicas` of this tier's Deployment now (Ready or still loading)."""
    newest_ready_at_s: float | None = None
    """When the pool's newest replica became Ready (same clock as `sampled_at_s`); None:
    not known. Latency observed soon after it is not the pool's steady state."""
    running_requests: float | None = None
    """Sum over the pool of vllm:num_requests_running."""
    waiting_requests: float | None = None
    """Sum over the pool of vllm:num_requests_waiting."""
    kv_usage_frac: float | None = None
    """Mean over the pool of vllm:kv_cache_usage_perc."""
    ttft_s: float | None = None
    """Observed TTFT of this pool at the tier's SLO percentile (histogram quantile)."""
    tpot_s: float | None = None
    """Observed TPOT of this pool at the tier's SLO percentile."""
    tpot_mean_s: float | None = None
    """Observed mean per-request TPOT of this pool (the TPOT histogram's sum / count over
    the window): far steadier than a percentile read from vLLM's buckets."""
    pool_rate_rps: float | None = None
    """Requests per second finishing on this tier's pool, spilled-in traffic included
    (the pool's vllm:request_success_total): the load behind `ttft_s` and `tpot_s`, which
    online calibration compares the model with."""
    attainment_frac: float | None = None
    """Observed fraction of this tier's requests that met its SLO (if measured)."""
    window_requests: float | None = None
    """Requests behind `attainment_frac` (finished in the window): how much to trust it."""
    attainment_most_frac: float | None = None
    """`attainment_frac` with every TPOT observation in the bucket that holds the TPOT
    bound counted as within it: the most the buckets allow (vLLM's TPOT buckets jump from
    10 to 25 ms, so they cannot tell a 20 ms SLO met from missed). TTFT is read linearly
    in both. None: not measured."""
    ttft_bucket_s: tuple[float, float] | None = None
    """(lower, upper) of the TTFT histogram bucket the SLO percentile lies in."""
    tpot_bucket_s: tuple[float, float] | None = None
    """(lower, upper) of the TPOT histogram bucket the SLO percentile lies in."""
    rate_history_rps: tuple[tuple[float, float], ...] = ()
    """(timestamp_s, rate_rps) samples of recent demand, oldest first, for forecasting."""

    def __post_init__(self) -> None:
        """Reject numbers no metric source can produce (a negative rate, a share above 1)."""
        if self.window_s < 0.0:
            raise ValueError(f"window_s must be >= 0, got {self.window_s}")
        for name in (
            "rate_rps",
            "prompt_tokens_mean",
            "output_tokens_mean",
            "prompt_tokens_p99",
            "output_tokens_p99",
            "running_requests",
            "waiting_requests",
            "ttft_s",
            "tpot_s",
            "tpot_mean_s",
            "pool_rate_rps",
            "window_requests",
        ):
            value = getattr(self, name)
            if value is not None and not value >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name in ("kv_usage_frac", "attainment_frac", "attainment_most_frac"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        for name in ("ready_replicas", "current_replicas"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything the planner reads for one decision."""

    by_tier: dict[str, TierObservation] = field(default_factory=dict)
    """tier key -> observation."""

    def get(self, tier_key: str) -> TierObservation | None:
        return self.by_tier.get(tier_key)
