"""Step 3b: a queue the pool cannot drain within its TTFT SLO adds the rate that drains it.

The demand forecast rests on Envoy's request rate, a one-minute window that trails a
flash crowd; meanwhile the requests the pool could not serve wait in vLLM's queue. Where
that queue is longer than the pool's Ready replicas serve within the TTFT SLO (the same
test as the overload admission cap, `explain._admission_cap_rps`), the rate that drains
it within the drain time is added to the tier's demand: the scale-up is proportional to
the measured shortfall, not one replica per breach. The drain time is the tier's cold
start (new replicas serve nothing sooner), at least `PlannerConfig.backlog_drain_s`.
"""

from __future__ import annotations

from dataclasses import replace

from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier, queue_too_long


def with_backlog(live: LiveTier, own_capacity_rps: float, cfg: PlannerConfig) -> LiveTier:
    """`live` with the backlog's drain rate added to its demand, where the queue is one."""
    waiting = live.observation.waiting_requests
    if not cfg.drain_backlog or not waiting or waiting <= 0.0:
        return live
    if not queue_overloaded(live, own_capacity_rps):
        return live
    drain_s = max(live.tier.scaling.cold_start_s, cfg.backlog_drain_s)
    backlog_rps = waiting / drain_s
    demand = replace(
        live.demand,
        rate_rps=live.demand.rate_rps + backlog_rps,
        backlog_rps=backlog_rps,
        backlog_drain_s=drain_s,
    )
    return replace(live, demand=demand)


def queue_overloaded(live: LiveTier, own_capacity_rps: float) -> bool:
    """The pool's waiting queue is longer than its Ready replicas serve within the TTFT
    SLO: the queue alone makes a new request miss it (also the admission cap's test)."""
    return queue_too_long(
        live.observation.waiting_requests,
        live.ready_replicas,
        own_capacity_rps,
        live.tier.slo.ttft_s,
    )
