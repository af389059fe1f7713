"""Step 1: which tiers are planned (live, with fresh metrics) and which are held.

A live tier carries everything the later steps need: its smoothed request lengths, its
demand forecast over the cold start, its replicas, the breach verdict and learned bias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import PlannerState, TierDecision
from tierscale.domain.tiers import Tier
from tierscale.policy import forecast
from tierscale.policy.breach import (
    backlog_share,
    borrowed_share,
    decayed_floor,
    holds_without,
    inherited_size_share,
    next_bias,
    shortfall_planned,
    unproven,
    verdict,
)
from tierscale.policy.config import PlannerConfig
from tierscale.policy.lender_lengths import borrows_other_lengths
from tierscale.policy.lengths import Lengths, shape, smoothed_lengths
from tierscale_predictor import latency


@dataclass(frozen=True, slots=True)
class LiveTier:
    """A tier with fresh metrics, prepared for allocation."""

    tier: Tier
    observation: TierObservation
    lengths: Lengths
    """Smoothed prompt mean, output mean, prompt p99, output p99 (tokens)."""
    shape: latency.WorkloadShape
    demand: forecast.Forecast
    current_replicas: int
    ready_replicas: int
    slo_breached: bool | None
    """The breach verdict on the observed window (`breach.verdict`)."""
    breached: bool
    """A breach the guard answers: the verdict, counted only while no scale-up loads."""
    bias: float
    """The bias capacities are divided by: the decaying one or the floor, the larger."""
    shortfall_planned: bool
    learning_paused_s: float | None = None
    """Seconds since the pool's newest replica became Ready while its first minute is
    still in the metrics window and the breach does not hold without it
    (`breach.holds_without`): no bias or floor is learned; None: learning."""
    first_minute_s: float | None = None
    """Seconds since the newest replica became Ready while its first minute is in the
    window, breach or not: the calibration learns nothing then."""
    backlog_explains: tuple[float, float] | None = None
    """(seconds ago, waiting) of the queue the pool carried into the window when the
    breach does not hold without the part of the window it explains
    (`breach.backlog_share`): no bias or floor is learned; None: learning."""
    unsized_s: float | None = None
    """Seconds of the metrics window before the planner first sized the pool (this, the
    tier's first decision, or an earlier first decision that raised the pool) when the
    breach does not hold without them (`breach.holds_without`): the pool then ran at a
    size the planner had not chosen; no bias or floor is learned; None: learning."""
    borrowed_frac: float | None = None
    """The share of the requests the pool finished in the window that were other tiers'
    (routed onto it) when the breach does not hold without them (`breach.holds_without`):
    they were judged by this tier's SLO; no bias or floor is learned; None: learning."""
    decaying_bias: float = 1.0
    """The bias that grows on breaches and decays every decision (`breach.next_bias`)."""
    bias_floor: float = 1.0
    """The least bias earlier breaches prove, decayed to now (`breach.decayed_floor`)."""
    unproven_miss: bool = False
    """The window reads as a miss only by the linear estimate inside vLLM's buckets, which
    also allow the SLO met, where the model predicted what was seen (`breach.unproven`):
    no verdict, said in the message."""

    @property
    def window_explained(self) -> bool:
        """Something other than the model explains the window's breach (a first minute,
        a carried backlog, an inherited size or borrowed requests): it teaches no bias
        or floor (`_unlearned`)."""
        return not (
            self.learning_paused_s is None
            and self.backlog_explains is None
            and self.unsized_s is None
            and self.borrowed_frac is None
        )


def one_tier_per_deployment(tiers: Sequence[Tier]) -> tuple[list[Tier], list[tuple[Tier, Tier]]]:
    """Each Deployment has one owner: the first tier naming it. A later tier naming the same
    Deployment is InvalidSpec, gets no replicas and no routes of its own planned, and its
    Deployment is left to its owner (planning both gave one tier 1 replica, the other 0).

    Returns the owners, and (tier, owner) for every tier whose Deployment another owns.
    """
    owner_by_pool: dict[tuple[str, str], Tier] = {}
    kept: list[Tier] = []
    duplicates: list[tuple[Tier, Tier]] = []
    for tier in tiers:
        pool = (tier.namespace, tier.pool.deployment)
        owner = owner_by_pool.get(pool)
        if owner is None:
            owner_by_pool[pool] = tier
            kept.append(tier)
            continue
        duplicates.append((tier, owner))
    return kept, duplicates


def observe(
    tiers: Sequence[Tier],
    observations: Observations,
    prior: PlannerState,
    now_s: float,
    cfg: PlannerConfig,
    contested: Mapping[str, str],
) -> tuple[list[LiveTier], list[Tier]]:
    live: list[LiveTier] = []
    held: list[Tier] = []
    for tier in sorted(tiers, key=lambda t: t.key):
        obs = observations.get(tier.key)
        if tier.key in contested or obs is None or obs.rate_rps is None or stale(obs, now_s, cfg):
            held.append(tier)
            continue
        last = prior.last_decisions.get(tier.key)
        current = obs.current_replicas
        if current is None:
            current = last.desired_replicas if last else tier.pool.min_replicas
        ready = obs.ready_replicas if obs.ready_replicas is not None else current
        # While ordered replicas still load, the breach they answer stays visible for a
        # cold start plus a metrics window; counting it again would stack replicas.
        seen = verdict(tier, obs, cfg, last)
        breached = ready >= current and seen is True
        short = shortfall_planned(last)
        holds = cfg.hold_lender_lengths and borrows_other_lengths(tier.key, prior)
        lengths = prior.lengths_by_tier[tier.key] if holds else smoothed_lengths(obs, prior, cfg)
        first = first_minute_age_s(obs, now_s, cfg)
        why = _unlearned(tier, obs, prior, now_s, cfg, breached, first, ready)
        bias = prior.bias_by_tier.get(tier.key, 1.0)
        if why.learns:
            bias = next_bias(bias, breached and not short, cfg)
        elapsed_s = now_s - prior.last_plan_at_s if prior.last_plan_at_s is not None else 0.0
        floor = decayed_floor(prior.bias_floor_by_tier.get(tier.key, 1.0), elapsed_s, cfg)
        live.append(
            LiveTier(
                tier=tier,
                observation=obs,
                lengths=lengths,
                shape=shape(lengths),
                demand=forecast.with_headroom(
                    forecast.forecast_rate(
                        obs.rate_rps,
                        obs.rate_history_rps,
                        now_s,
                        tier.scaling.cold_start_s,
                        cfg.forecast,
                        window_s=obs.window_s,
                    ),
                    tier.scaling.headroom,
                ),
                current_replicas=current,
                ready_replicas=min(ready, current),
                slo_breached=seen,
                breached=breached,
                bias=max(bias, floor),
                shortfall_planned=short,
                learning_paused_s=why.paused_s,
                first_minute_s=first,
                backlog_explains=why.backlog,
                unsized_s=why.unsized_s,
                borrowed_frac=why.borrowed_frac,
                decaying_bias=bias,
                bias_floor=floor,
                unproven_miss=seen is None and unproven(tier, obs, cfg, last),
            )
        )
    return live, held


@dataclass(frozen=True, slots=True)
class _Unlearned:
    """What keeps a window from teaching the bias and its floor (all None: it teaches)."""

    paused_s: float | None = None
    backlog: tuple[float, float] | None = None
    unsized_s: float | None = None
    borrowed_frac: float | None = None

    @property
    def learns(self) -> bool:
        return (
            self.paused_s is None
            and self.backlog is None
            and self.unsized_s is None
            and self.borrowed_frac is None
        )


def _unlearned(
    tier: Tier,
    obs: TierObservation,
    prior: PlannerState,
    now_s: float,
    cfg: PlannerConfig,
    breached: bool,
    first: float | None,
    ready: int,
) -> _Unlearned:
    """What keeps this window from teaching the bias and its floor: a new replica's first
    minute (its age, `LiveTier.learning_paused_s`), a backlog the pool carried into the
    window (`LiveTier.backlog_explains`), a size the planner had not chosen
    (`LiveTier.unsized_s`) or other tiers' requests on the pool (`LiveTier.borrowed_frac`).

    Without a breach nothing is explained away: the bias decays as usual. A breach learns
    where it holds with the parts of the window these explain (a first minute its end, a
    carried backlog and an inherited size its start, the larger of the two, and the
    borrowed requests their share) removed and counted as missed
    (`breach.holds_without`)."""
    if first is not None and not cfg.learn_before_first_minute:
        return _Unlearned(paused_s=first)
    queued = prior.backlog_by_tier.get(tier.key) if cfg.backlog_explains_breaches else None
    last = prior.last_decisions.get(tier.key)
    overloaded_now = last is not None and queue_too_long(
        obs.waiting_requests, ready, last.capacity_rps_per_replica, tier.slo.ttft_s
    )
    early = backlog_share(queued, obs.waiting_requests, overloaded_now, now_s, obs.window_s)
    late = max(first, 0.0) / obs.window_s if first is not None else 0.0
    unsized = _unsized_share(tier, prior, now_s, obs.window_s, cfg)
    borrowed = _borrowed_share(obs, last, cfg)
    if not breached:
        return _Unlearned(paused_s=first)
    share = max(early, unsized) + late + borrowed
    if share <= 0.0 or holds_without(tier, obs, min(share, 1.0), cfg):
        return _Unlearned()
    if first is not None:
        return _Unlearned(paused_s=first)
    if early > 0.0 and queued is not None:
        return _Unlearned(backlog=(now_s - queued[0], queued[1]))
    if unsized > 0.0:
        return _Unlearned(unsized_s=unsized * obs.window_s)
    return _Unlearned(borrowed_frac=borrowed)


def _borrowed_share(obs: TierObservation, last: TierDecision | None, cfg: PlannerConfig) -> float:
    """The share of the requests the pool finished in the window that were other tiers'
    (`breach.borrowed_share`): the larger of what the last decision routed onto the pool
    and what the pool finished beyond the tier's own arrivals; 0 with the rule off."""
    if not cfg.borrowed_requests_explain_breaches:
        return 0.0
    served_rps = served_load_rps(obs)
    routed_rps = last.spill_in_rps if last is not None else 0.0
    return borrowed_share(max(routed_rps, served_rps - (obs.rate_rps or 0.0)), served_rps)


def _unsized_share(
    tier: Tier, prior: PlannerState, now_s: float, window_s: float, cfg: PlannerConfig
) -> float:
    """The share of the window before the planner first sized the pool
    (`breach.inherited_size_share`): all of it at the tier's first decision, up to that
    decision where it raised the pool, none where it did not (no
    `PlannerState.sized_up_at_by_tier` entry after a first decision) or with the rule off."""
    if not cfg.inherited_size_explains_breaches:
        return 0.0
    sized_up_at_s = prior.sized_up_at_by_tier.get(tier.key)
    if sized_up_at_s is None and not first_decision(tier.key, prior):
        return 0.0
    return inherited_size_share(sized_up_at_s, now_s, window_s)


def first_decision(key: str, prior: PlannerState) -> bool:
    """Is this the planner's first decision for the tier with fresh metrics? A tier it
    decided before has a learned bias (1.0 included), kept while it is held."""
    return key not in prior.bias_by_tier


def queue_too_long(
    waiting: float | None, ready_replicas: int, capacity_rps: float, ttft_slo_s: float
) -> bool:
    """A waiting queue longer than `ready_replicas` serve within the TTFT SLO at
    `capacity_rps` each: the queue alone makes a new request miss it."""
    return waiting is not None and waiting > ready_replicas * capacity_rps * ttft_slo_s


def served_load_rps(obs: TierObservation) -> float:
    """The load the tier's pool serves now: the rate finishing on it (spilled-in traffic
    included), else the tier's own rate; 0 when neither is measured."""
    if obs.pool_rate_rps is not None:
        return obs.pool_rate_rps
    return obs.rate_rps or 0.0


def first_minute_age_s(obs: TierObservation, now_s: float, cfg: PlannerConfig) -> float | None:
    """How long ago the pool's newest replica became Ready, if the window still holds
    metrics of its first minute (`PlannerConfig.first_minute_s`); else None."""
    if obs.newest_ready_at_s is None:
        return None
    age_s = now_s - obs.newest_ready_at_s
    if age_s < cfg.first_minute_s + obs.window_s:
        return max(age_s, 0.0)  # Ready after the decision time: the clocks disagree
    return None


def stale(obs: TierObservation, now_s: float, cfg: PlannerConfig) -> bool:
    """Sampled after the decision time (a clock or replay mix-up) or too long before it."""
    return obs.sampled_at_s > now_s or now_s - obs.sampled_at_s > cfg.stale_after_s


def held_replicas(tier: Tier, observations: Observations, prior: PlannerState) -> int:
    """Replicas a held tier keeps: what runs now if known, else what was last decided."""
    obs = observations.get(tier.key)
    if obs is not None and obs.current_replicas is not None:
        return obs.current_replicas
    last = prior.last_decisions.get(tier.key)
    return last.desired_replicas if last else tier.pool.min_replicas
