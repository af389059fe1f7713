"""Learned: the batch limit a pool's engine really runs with, from its queue.

vLLM admits a waiting request while fewer than `--max-num-seqs` run, the KV cache has
room and the step's token budget allows. A pool whose replicas each run the same few
requests while requests wait and the KV cache is far from full shows a batch limit far
below the one its latency model assumes (the profile's default, or the
`--max-num-seqs` read from the Deployment, where the engine runs with another: a config
file, a default that changed between vLLM versions or GPUs): the model then
predicts several times the capacity the pool has, and only the breach bias, bounded at
x2, answers it. This module reads the limit from the gauges Prometheus has
(`vllm:num_requests_running`, `_waiting`, `vllm:kv_cache_usage_perc`) and hands the
capacities a model with it, so the plan sizes the pool for the engine it runs.

Evidence, at two decisions in a row at the same level (within 5 % or one request per
replica: a burst fills a queue for a moment, a limit holds it): no Ready replica in its
first minute; requests waiting, at least two per Ready replica and a quarter of those
running (a request or two waiting for the next step is arrival noise, not a queue); the
KV cache below `KV_ROOM_FRAC`; the tier's mean prompt small enough that the step's token
budget admits several at once (else a long prefill holds the queue); and at most half
the model's limit running per replica. The learned limit only rises after that: to a
later confirmed level above it, and to any reading of more running per replica than it
allows. It is planned with only where it lowers the pool's own capacity at its SLO by
more than `MATERIAL_FRAC` (`material`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tierscale.domain.plans import PlannerState
from tierscale.policy.capacities import planning_slo
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier
from tierscale_predictor import capacity, latency

KV_ROOM_FRAC = 0.8
"""A pool whose KV cache is fuller than this may be held by the cache, not the limit."""
QUEUE_PER_REPLICA = 2.0
QUEUE_FRAC = 0.25
"""Requests waiting must be at least `QUEUE_PER_REPLICA` per Ready replica and this share
of those running: a request or two waiting for the next step is arrival noise, not a
queue."""
MATERIAL_FRAC = 0.1
"""A learned limit is planned with where it lowers the pool's own capacity by more."""
PLATEAU_FRAC = 0.05
"""Two readings a decision apart confirm a limit where they differ by at most this share
(or one request per replica)."""
EVIDENCE_FRAC = 0.5
"""Learn only where the replicas run at most this share of the sequences the model lets
one run (`max_num_seqs`, or fewer where the KV cache fills first)."""
PROMPTS_PER_BUDGET = 4.0
"""The tier's mean prompt must fit this many times into the step's token budget."""


@dataclass(frozen=True, slots=True)
class Learned:
    """What this decision learned about the pools' batch limits (`PlannerState` fields)."""

    limit_by_tier: dict[str, int]
    """tier key -> the batch limit its pool is learned to run with (absent: none)."""
    plateau_by_tier: dict[str, float]
    """tier key -> running requests per Ready replica at this decision's saturated
    reading, awaiting the next decision's to confirm it (absent: none)."""


def learned_limits(
    live: Sequence[LiveTier], models: Mapping[str, latency.LatencyModel], prior: PlannerState
) -> Learned:
    """Each live pool's learned limit and pending plateau after this decision."""
    limits: dict[str, int] = {}
    plateaus: dict[str, float] = {}
    for t in live:
        key = t.tier.key
        limit, plateau = _next(
            t,
            models[key],
            prior.batch_limit_by_tier.get(key),
            prior.queue_plateau_by_tier.get(key),
        )
        if limit is not None:
            limits[key] = limit
        if plateau is not None:
            plateaus[key] = plateau
    return Learned(limits, plateaus)


def _next(
    t: LiveTier, model: latency.LatencyModel, known: int | None, pending: float | None
) -> tuple[int | None, float | None]:
    """(learned limit, plateau pending confirmation) after this decision's reading."""
    obs = t.observation
    ready = t.ready_replicas
    if obs.running_requests is None or ready < 1:
        return known, None
    per_replica = obs.running_requests / ready
    if known is not None and per_replica > known:
        known = math.ceil(per_replica)
    if not _saturated(t, model, per_replica):
        return known, None
    if pending is None or abs(per_replica - pending) > max(1.0, PLATEAU_FRAC * pending):
        return known, per_replica  # a first reading at this level: confirm it next time
    seen = round(max(per_replica, pending))
    return (seen if known is None else max(known, seen)), per_replica


def _saturated(t: LiveTier, model: latency.LatencyModel, per_replica: float) -> bool:
    """Does this reading show the replicas held at a batch limit far below the model's?"""
    obs = t.observation
    running = obs.running_requests or 0.0
    return (
        obs.waiting_requests is not None
        and obs.kv_usage_frac is not None
        and t.first_minute_s is None
        and obs.waiting_requests >= max(QUEUE_PER_REPLICA * t.ready_replicas, QUEUE_FRAC * running)
        and obs.kv_usage_frac < KV_ROOM_FRAC
        and 1.0 <= per_replica <= EVIDENCE_FRAC * _model_seqs(model, t)
        and t.lengths[0] * PROMPTS_PER_BUDGET <= model.max_num_batched_tokens
    )


def _model_seqs(model: latency.LatencyModel, t: LiveTier) -> float:
    """The most sequences the model lets one replica run at the tier's lengths: its
    `max_num_seqs`, or fewer where their KV cache fills first."""
    return latency.batch_limit(model, t.shape) / model.tail.batch_limit_frac


def material(
    live: Sequence[LiveTier],
    models: Mapping[str, latency.LatencyModel],
    learned: Mapping[str, int],
    cfg: PlannerConfig,
) -> dict[str, int]:
    """tier key -> the learned limit to plan with: only those that lower the pool's own
    capacity at its SLO by more than `MATERIAL_FRAC`. Where the latency targets bind
    before the batch does, a learned limit moves the plan by little, and under a binding
    budget a little reshuffles which tier gets the last replica: on gen-s7-019 (5 tiers,
    6 GPUs) the batch pool learned 128 where the model allowed ~400, its capacity fell
    2 %, and a chat tier went from 98.0 to 80.3 % of its 95 %."""
    out: dict[str, int] = {}
    for t in live:
        key = t.tier.key
        if key not in learned:
            continue
        slo = planning_slo(t.tier, cfg)
        before = capacity.max_rate_rps(models[key], slo, t.shape)
        limited = replace(models[key], max_num_seqs=min(models[key].max_num_seqs, learned[key]))
        if capacity.max_rate_rps(limited, slo, t.shape) < (1.0 - MATERIAL_FRAC) * before:
            out[key] = learned[key]
    return out


def with_limits(
    models: Mapping[str, latency.LatencyModel], limits: Mapping[str, int]
) -> dict[str, latency.LatencyModel]:
    """The models with each learned limit in place of a larger `max_num_seqs`."""
    return {
        key: replace(m, max_num_seqs=min(m.max_num_seqs, limits[key])) if key in limits else m
        for key, m in models.items()
    }
