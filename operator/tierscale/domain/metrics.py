"""The raw inputs of one decision, in the form a Prometheus in front of vLLM and Envoy gives them.

Both shells produce exactly this: the Prometheus adapter from PromQL (`tierscale.adapters.
prometheus`), the fleet simulator from its replicas (`tierscale_sim`). One pure function
(`tierscale.loop.observe`) turns it into the planner's `Observations`, so the planner sees
no number in the simulator that a cluster could not give it: latency only as histogram
buckets (vLLM's own bounds, `histogram_quantile` semantics), demand only as Envoy's
per-route counters, replicas only as Kubernetes reports them.

A value of None means "not measured" (query error, empty or NaN result, stale sample):
the planner holds on it; it is never read as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Histogram:
    """How one Prometheus histogram grew over a window (`increase(x_bucket[w])` summed by `le`).

    `cumulative_counts[i]` counts observations <= `upper_bounds[i]`; `count` is the +Inf
    bucket (= `x_count`); `sum_value` is the increase of `x_sum` (None: not read).
    """

    upper_bounds: tuple[float, ...]
    """The finite `le` bounds, ascending."""
    cumulative_counts: tuple[float, ...]
    """Parallel to `upper_bounds`; non-decreasing."""
    count: float
    sum_value: float | None = None

    def __post_init__(self) -> None:
        if len(self.upper_bounds) != len(self.cumulative_counts):
            raise ValueError("histogram: one cumulative count per finite bucket bound")

    @staticmethod
    def of(values: Sequence[float], upper_bounds: Sequence[float]) -> Histogram:
        """The histogram vLLM would export for these observations (for simulators and tests)."""
        bounds = tuple(float(b) for b in upper_bounds)
        ordered = sorted(float(v) for v in values)
        cumulative: list[float] = []
        at = 0
        for bound in bounds:
            while at < len(ordered) and ordered[at] <= bound:
                at += 1
            cumulative.append(float(at))
        return Histogram(bounds, tuple(cumulative), float(len(ordered)), float(sum(ordered)))

    def quantile(self, q: float, *, at_most: float | None = None) -> float | None:
        """Prometheus' `histogram_quantile(q, ...)`: linear inside the bucket holding rank q.

        None without observations. A rank in the +Inf bucket returns the highest finite
        bound, as Prometheus does (a lower bound on the true quantile).

        `at_most`: the largest value any observation can take (a token histogram's
        `--max-model-len`), when known. It closes the buckets it cuts: the bucket holding
        rank q is interpolated up to `min(its bound, at_most)` and the +Inf bucket up to
        `at_most`, so a tail cut short by the limit is neither placed beyond it (vLLM's
        1-2-5 buckets are a factor 2-2.5 wide) nor read as the highest finite bound.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        if at_most is not None and not at_most > 0.0:
            raise ValueError(f"at_most must be > 0, got {at_most}")
        if not self.upper_bounds or self.count <= 0.0 or math.isnan(self.count):
            return None
        rank = q * self.count
        top = math.inf if at_most is None else at_most
        previous_bound, previous_count = 0.0, 0.0
        for bound, cumulative in zip(self.upper_bounds, self.cumulative_counts, strict=True):
            if cumulative >= rank:
                upper = min(bound, top)
                in_bucket = cumulative - previous_count
                if in_bucket <= 0.0:
                    return upper
                lower = previous_bound if previous_bound < bound else 0.0
                lower = min(lower, upper)
                return lower + (upper - lower) * (rank - previous_count) / in_bucket
            previous_bound, previous_count = bound, cumulative
        highest = self.upper_bounds[-1]
        in_bucket = self.count - previous_count
        if at_most is None or at_most <= highest or in_bucket <= 0.0:
            return min(highest, top)
        return highest + (at_most - highest) * (rank - previous_count) / in_bucket

    def fraction_at_most(self, value: float) -> float | None:
        """Estimated share of observations <= `value` (linear inside its bucket, the same
        assumption `histogram_quantile` makes). Observations in the +Inf bucket count as
        above any `value`: the estimate never flatters a latency SLO."""
        if self.count <= 0.0 or math.isnan(self.count):
            return None
        previous_bound, previous_count = 0.0, 0.0
        for bound, cumulative in zip(self.upper_bounds, self.cumulative_counts, strict=True):
            if value < bound:
                if value <= previous_bound:
                    below = previous_count
                else:
                    share = (value - previous_bound) / (bound - previous_bound)
                    below = previous_count + (cumulative - previous_count) * share
                return min(max(below / self.count, 0.0), 1.0)
            previous_bound, previous_count = bound, cumulative
        return min(max(previous_count / self.count, 0.0), 1.0)

    def fraction_at_most_bounds(self, value: float) -> tuple[float, float] | None:
        """(least, most) share of observations <= `value` the buckets allow.

        Inside the bucket that holds `value` the histogram cannot tell which side of it an
        observation fell on: the least counts none of that bucket, the most all of it.
        `fraction_at_most` is the linear estimate between the two. None without
        observations."""
        if self.count <= 0.0 or math.isnan(self.count):
            return None
        previous_bound, previous_count = 0.0, 0.0
        for bound, cumulative in zip(self.upper_bounds, self.cumulative_counts, strict=True):
            if value < bound:
                most = cumulative if value > previous_bound else previous_count
                return _share(previous_count, self.count), _share(most, self.count)
            previous_bound, previous_count = bound, cumulative
        share = _share(previous_count, self.count)
        return share, share

    def quantile_bucket(self, q: float) -> tuple[float, float] | None:
        """(lower, upper) bound of the bucket that holds rank `q`: the true quantile lies
        in it, wherever `quantile` interpolates. A rank in the +Inf bucket gives (highest
        finite bound, inf). None without observations."""
        if not self.upper_bounds or self.count <= 0.0 or math.isnan(self.count):
            return None
        rank = q * self.count
        previous_bound = 0.0
        for bound, cumulative in zip(self.upper_bounds, self.cumulative_counts, strict=True):
            if cumulative >= rank:
                return previous_bound, bound
            previous_bound = bound
        return self.upper_bounds[-1], math.inf

    def mean(self) -> float | None:
        if self.count <= 0.0 or math.isnan(self.count) or self.sum_value is None:
            return None
        return self.sum_value / self.count


@dataclass(frozen=True, slots=True)
class TierTraffic:
    """One tier's demand as Envoy counts it (its route's `stat_prefix` counters)."""

    sampled_at_s: float
    """When the sample was taken (the newest scrape of its series; the oldest of those when
    several series are summed), same clock as `now_s`."""
    window_s: float
    """Length of the rate window (seconds)."""
    rate_rps: float | None
    """Requests per second arriving for this tier over the window."""
    rate_history_rps: tuple[tuple[float, float], ...] = ()
    """(timestamp_s, rate_rps), oldest first: the same rate at earlier evaluation times."""


@dataclass(frozen=True, slots=True)
class PoolSignals:
    """One pool (a tier's vLLM Deployment) as its pods' vLLM metrics show it, summed over pods."""

    sampled_at_s: float
    window_s: float
    ttft: Histogram | None = None
    """`vllm:time_to_first_token_seconds` over the window."""
    tpot: Histogram | None = None
    """`vllm:request_time_per_output_token_seconds` over the window (per-request TPOT)."""
    prompt_tokens: Histogram | None = None
    """`vllm:request_prompt_tokens` over the window."""
    output_tokens: Histogram | None = None
    """`vllm:request_generation_tokens` over the window."""
    finished_rate_rps: float | None = None
    """`rate(vllm:request_success_total)`: requests finishing per second, spill-in included."""
    running_requests: float | None = None
    """Sum of `vllm:num_requests_running` over the pods."""
    waiting_requests: float | None = None
    """Sum of `vllm:num_requests_waiting` over the pods."""
    kv_usage_frac: float | None = None
    """Mean of `vllm:kv_cache_usage_perc` over the pods (0..1)."""


@dataclass(frozen=True, slots=True)
class PoolReplicas:
    """A Deployment's replicas as Kubernetes reports them."""

    current: int | None
    """`spec.replicas`: Ready or still loading."""
    ready: int | None
    """`status.readyReplicas`."""
    newest_ready_at_s: float | None = None
    """When the pool's newest replica became Ready (same clock as `now_s`); None: not
    known. Its first minute of metrics is a cold cache and a half-filled batch, not the
    steady state a latency model should learn from."""


@dataclass(frozen=True, slots=True)
class MetricInputs:
    """Everything measured for one decision, before any interpretation."""

    traffic_by_tier: Mapping[str, TierTraffic] = field(default_factory=dict)
    """tier key (`namespace/name`) -> Envoy's view of its demand."""
    signals_by_pool: Mapping[str, PoolSignals] = field(default_factory=dict)
    """pool key (`namespace/deployment`) -> vLLM's view of the pool."""
    replicas_by_pool: Mapping[str, PoolReplicas] = field(default_factory=dict)
    """pool key -> Kubernetes' view of the Deployment."""


def _share(count: float, total: float) -> float:
    return min(max(count / total, 0.0), 1.0)
