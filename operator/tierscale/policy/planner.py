"""The joint tier planner: one pure function the operator and the simulator both call.

    plan(tiers, observations, model, state, now_s, budget) -> Plan

Each call runs the same named steps, so a decision can be read (and replayed) step by step:

1. observe  - split tiers into live ones (fresh metrics) and held ones (missing or stale
              metrics: their Deployment is left alone and the last decision is kept)
              (`observe.py`; what is learned on the way: `breach.py`, `lengths.py`);
2. forecast - demand over each tier's cold-start horizon (`forecast.py`);
3. capacity - for every tier j and every pool p it may use, the rate one replica of p
              serves within p's SLO for j's request lengths (the predictor), discounted by
              the bias learned from observed SLO breaches (`capacities.py`, `calibrate.py`);
   backlog  - a waiting queue longer than the Ready replicas serve within the TTFT SLO
              adds the rate that drains it to the tier's demand (`backlog.py`);
4. allocate - integer replicas and spillover flows, exactly (`target.py`, `allocation.py`,
              HiGHS MILP), inside the GPU budget, unserved demand degraded lowest priority
              first;
5. guard    - an observed SLO breach scales up even when the model disagrees;
6. stabilise- scale up at once, scale down only after the window (`stabilize.py`);
7. route    - today's traffic split over the replicas that are Ready now, so spillover
              absorbs demand while new replicas load (`route.py`);
8. explain  - a reason code and one human sentence per tier (`explain.py`).

This module is the pipeline: it calls the steps in order and carries the state between
decisions; `PlannerConfig` (`config.py`) holds every knob.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from tierscale.domain.observations import Observations
from tierscale.domain.plans import Plan, PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import allocation, backlog, batch_limit, breach, explain, stabilize
from tierscale.policy.calibrate import calibrated, multipliers
from tierscale.policy.capacities import (
    ModelSource,
    capacities,
    lenders_in_trouble,
    models_by_tier,
    own_pool_capacity_rps,
)
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import (
    LiveTier,
    first_decision,
    held_replicas,
    observe,
    one_tier_per_deployment,
    served_load_rps,
)
from tierscale.policy.route import route_now
from tierscale.policy.target import (
    gpu_caps,
    lender_spec,
    margins_last,
    own_pools_first,
    pool_spec,
    spill_where_short,
)
from tierscale.policy.trace import Trace, needed_replicas, tightest_cap
from tierscale_predictor import latency

__all__ = ["ModelSource", "Plan", "PlannerConfig", "plan"]

_V = TypeVar("_V")


def plan(
    *,
    tiers: Sequence[Tier],
    observations: Observations,
    model: ModelSource,
    now_s: float,
    state: PlannerState | None = None,
    budget: GpuBudget | None = None,
    config: PlannerConfig | None = None,
    conflicts: Mapping[str, str] | None = None,
    invalid: Mapping[str, str] | None = None,
) -> Plan:
    """Decide replicas and routing for every tier jointly; see the module docstring.

    `now_s` is the decision time on the observations' clock (seconds): an observation
    sampled after it, or more than `config.stale_after_s` before it, is stale and its tier
    is held. Of two tiers naming one Deployment, the later in `tiers` is InvalidSpec and
    nothing is planned for it (shells pass tiers oldest first). `conflicts` names the tiers
    whose Deployment another writer scales (tier key -> who): they are held at the
    replicas they have, like tiers with stale metrics, with reason Conflict. `invalid`
    names tiers the shell found unusable (tier key -> why, e.g. their Deployment does not
    exist): InvalidSpec, nothing planned for them, nothing of theirs touched.
    """
    cfg = config or PlannerConfig()
    prior = state or PlannerState()
    rejected = {
        key: TierDecision(
            tier_key=key,
            desired_replicas=0,
            weights_by_pool={},
            reason=Reason.INVALID_SPEC,
            message=why,
        )
        for key, why in (invalid or {}).items()
    }
    tiers, duplicate = _one_owner_each(
        [t for t in tiers if t.key not in rejected], observations, prior
    )
    contested = dict(conflicts or {})
    live, held = observe(tiers, observations, prior, now_s, cfg, contested)
    assumed = calibrated(live, models_by_tier(tiers, model), prior, cfg)
    learned_limits = (
        batch_limit.learned_limits(live, assumed, prior)
        if cfg.learn_batch_limit
        else batch_limit.Learned({}, {})
    )
    limits = batch_limit.material(live, assumed, learned_limits.limit_by_tier, cfg)
    models = batch_limit.with_limits(assumed, limits)
    live, proven_at = _floors_now(live, models, prior, cfg)
    trouble = lenders_in_trouble(live)
    caps = capacities(live, models, cfg, trouble)
    floors = {t.tier.key: _bias_floor(t, caps[t.tier.key].get(t.tier.key, 0.0), cfg) for t in live}
    kept_floors = _kept_floors(live, floors, proven_at, caps)
    live = [backlog.with_backlog(t, caps[t.tier.key].get(t.tier.key, 0.0), cfg) for t in live]
    problem = allocation.AllocationProblem(
        pools=[lender_spec(t, live, caps) for t in live] + [pool_spec(t) for t in held],
        demands=[
            allocation.DemandSpec(t.tier.key, t.demand.rate_rps, t.tier.priority, caps[t.tier.key])
            for t in live
        ],
        budgets=gpu_caps(tiers, budget),
        fixed_replicas_by_pool={t.key: held_replicas(t, observations, prior) for t in held},
        preferred_replicas_by_pool={t.tier.key: t.current_replicas for t in live},
    )
    own = own_pools_first(problem) if cfg.spill_only_when_short else None
    if own is None and cfg.spill_only_when_short:
        problem = spill_where_short(problem)
    if own is not None:
        target = own
    elif cfg.margins_yield_to_demand:
        served = allocation.serve_all(problem)
        target = served if served is not None else margins_last(live, models, problem, cfg, trouble)
    else:
        target = allocation.solve(problem)
    wish = {t.tier.key: _guard_wish(t, target.replicas_by_pool[t.tier.key]) for t in live}
    raw = {t.tier.key: _within_pool(t, wish[t.tier.key]) for t in live}
    stabilized = {
        t.tier.key: _stabilized(t, raw[t.tier.key], prior, now_s, models, caps) for t in live
    }
    stable = {t.tier.key: _within_pool(t, stabilized[t.tier.key].replicas) for t in live}
    desired, trimmed_by, yielded_to = _fit_budget(live, stable, target.replicas_by_pool, problem)
    routing = route_now(live, caps, desired)
    gpus_by_pool = {p.name: p.gpus_per_replica for p in problem.pools}
    everything = {**dict(problem.fixed_replicas_by_pool), **desired}
    decisions = {}
    totals = explain.flow_totals(target, routing, caps)
    for t in live:
        key = t.tier.key
        trimmed = trimmed_by.get(key)
        trace = Trace(
            needed=needed_replicas(t.demand.rate_rps, caps[key].get(key, 0.0)),
            allocated=target.replicas_by_pool[key],
            allocation_cap=tightest_cap(
                key, problem.budgets, target.replicas_by_pool, gpus_by_pool
            ),
            allocation_feasible=target.status != "infeasible",
            guard_wish=wish[key],
            guarded=raw[key],
            stabilized=stabilized[key],
            stable=stable[key],
            desired=desired[key],
            fit_cap=None
            if trimmed is None
            else tightest_cap(key, [trimmed], everything, gpus_by_pool),
            spill_withdrawn=_spill_withdrawn(key, prior, trouble),
            yielded_to=yielded_to.get(key, ()),
        )
        learned = limits.get(key)
        decisions[key] = explain.explain(
            t,
            trace,
            target,
            routing,
            caps,
            models,
            cfg,
            None if learned is None else (learned, assumed[key].max_num_seqs),
            totals,
        )
    for tier in held:
        decisions[tier.key] = explain.hold(
            tier, observations, prior, now_s, cfg, contested.get(tier.key)
        )
    total = sum(d.gpus for d in decisions.values())
    decisions.update(duplicate)
    decisions.update(rejected)
    new_state = PlannerState(
        recommendations_by_tier=_carried(
            prior.recommendations_by_tier, held, {k: s.history for k, s in stabilized.items()}
        ),
        last_plan_at_s=now_s,
        bias_by_tier=_carried(
            prior.bias_by_tier, held, {t.tier.key: t.decaying_bias for t in live}
        ),
        bias_floor_by_tier=_carried(
            prior.bias_floor_by_tier, held, {k: f for k, (f, _) in kept_floors.items()}
        ),
        floor_capacity_by_tier=_carried(
            prior.floor_capacity_by_tier, held, {k: c for k, (_, c) in kept_floors.items()}
        ),
        last_decisions=decisions,
        lengths_by_tier=_carried(
            prior.lengths_by_tier, held, {t.tier.key: t.lengths for t in live}
        ),
        correction_by_tier=_carried(
            prior.correction_by_tier,
            held,
            {t.tier.key: multipliers(models[t.tier.key]) for t in live},
        ),
        backlog_by_tier=_carried(prior.backlog_by_tier, held, _backlogs(live, caps, prior, now_s)),
        sized_up_at_by_tier=_carried(
            prior.sized_up_at_by_tier, held, _sized_up(live, decisions, prior, now_s)
        ),
        batch_limit_by_tier=_carried(prior.batch_limit_by_tier, held, learned_limits.limit_by_tier),
        queue_plateau_by_tier=_carried(
            prior.queue_plateau_by_tier, held, learned_limits.plateau_by_tier
        ),
    )
    limited = any(Reason.BUDGET_LIMITED in d.bound_by for d in decisions.values())
    return Plan(now_s, decisions, new_state, total, limited, target.status)


def _floors_now(
    live: Sequence[LiveTier],
    models: Mapping[str, latency.LatencyModel],
    prior: PlannerState,
    cfg: PlannerConfig,
) -> tuple[list[LiveTier], dict[str, tuple[float, float]]]:
    """Each pool's bias floor as far as its breach bounds it now (`breach.floor_now`,
    `PlannerConfig.floor_follows_model`), and per floored pool the (decayed floor, model
    capacity it was proven at) it carries on with unless a new breach proves more."""
    out: list[LiveTier] = []
    proven_at: dict[str, tuple[float, float]] = {}
    for t in live:
        at_rps = prior.floor_capacity_by_tier.get(t.tier.key)
        if t.bias_floor <= 1.0 or at_rps is None:
            out.append(t)
            continue
        proven_at[t.tier.key] = (t.bias_floor, at_rps)
        if not cfg.floor_follows_model:
            out.append(t)
            continue
        own_rps = own_pool_capacity_rps(models[t.tier.key], t.tier, t.shape, cfg)
        floor = breach.floor_now(t.bias_floor, at_rps, own_rps)
        out.append(replace(t, bias=max(t.decaying_bias, floor), bias_floor=floor))
    return out, proven_at


def _kept_floors(
    live: Sequence[LiveTier],
    floors: Mapping[str, float],
    proven_at: Mapping[str, tuple[float, float]],
    caps: Mapping[str, Mapping[str, float]],
) -> dict[str, tuple[float, float]]:
    """tier key -> (bias floor, model capacity per replica it was proven at) carried to the
    next decision: a floor this decision's breach raised, with today's model capacity;
    else the earlier one as proven (not as shrunk for today: `_floors_now` shrinks it
    afresh each decision from what it was proven at)."""
    kept: dict[str, tuple[float, float]] = {}
    for t in live:
        key = t.tier.key
        floor = floors[key]
        if key in proven_at and floor <= t.bias_floor:
            kept[key] = proven_at[key]
        elif floor > 1.0:
            kept[key] = (floor, caps[key].get(key, 0.0) * t.bias)
    return kept


def _bias_floor(t: LiveTier, own_capacity_rps: float, cfg: PlannerConfig) -> float:
    """The least bias the pool's breaches prove, after this decision (`breach.floor_after`).

    Learned only from a breach that counts (`LiveTier.breached`, the plan had not meant
    the pool to run short, no replica in its first minute) with every replica Ready. The
    load is what the pool was offered per Ready replica: the larger of the rate finishing
    on it (spilled-in traffic included) and the tier's own arrival rate. A queued pool
    finishes requests at its batch limit, not at the rate it is offered; judged by its
    completions alone, one replica with 253 waiting at the start (gen-s2027-003) proved
    a x2.0 floor and cost 1.6x the GPU-hours. The capacity compared is the model's,
    without any bias.

    A breach that holds with a new replica's first minute counted as missed still
    teaches (`PlannerConfig.learn_before_first_minute`), but that replica did not carry
    its share of the window, so the load is per the other Ready replicas
    (`PlannerConfig.floor_load_without_newest`; with only the new one, no floor).
    Counted per Ready replica, gen-s20261130-006's pool, 1 replica offered ~1.2 req/s
    and a second just Ready, proved a x1.99 floor at 0.6 req/s per replica and ran up to
    21 replicas (7.41 GPU-hours; the oracle 3.47); per the replica that carried the
    window, the floor is at most x1.61 (19 replicas, 6.71 GPU-hours, the tier still
    met)."""
    learns = (
        t.breached
        and not t.shortfall_planned
        and not t.window_explained
        and t.ready_replicas >= 1
        and t.ready_replicas == t.current_replicas
    )
    offered_rps = max(served_load_rps(t.observation), t.observation.rate_rps or 0.0)
    new = 1 if cfg.floor_load_without_newest and t.first_minute_s is not None else 0
    carried = t.ready_replicas - new
    load_rps = offered_rps / carried if learns and carried >= 1 else None
    return breach.floor_after(t.bias_floor, own_capacity_rps * t.bias, load_rps, cfg)


def _backlogs(
    live: Sequence[LiveTier],
    caps: Mapping[str, Mapping[str, float]],
    prior: PlannerState,
    now_s: float,
) -> dict[str, tuple[float, float]]:
    """(time, waiting) of the latest decision within each live pool's metrics window that
    saw its queue longer than the Ready replicas serve within the TTFT SLO
    (`PlannerState.backlog_by_tier`, read by `breach.backlog_share`)."""
    out: dict[str, tuple[float, float]] = {}
    for t in live:
        key = t.tier.key
        kept = prior.backlog_by_tier.get(key)
        if backlog.queue_overloaded(t, caps[key].get(key, 0.0)):
            out[key] = (now_s, t.observation.waiting_requests or 0.0)
        elif kept is not None and now_s - kept[0] < t.observation.window_s:
            out[key] = kept
    return out


def _sized_up(
    live: Sequence[LiveTier],
    decisions: Mapping[str, TierDecision],
    prior: PlannerState,
    now_s: float,
) -> dict[str, float]:
    """When the planner first sized each live pool (`PlannerState.sized_up_at_by_tier`):
    now where this is the tier's first decision and it raises the pool above the replicas
    it found, as remembered while that is inside the metrics window; none where the first
    decision did not raise it (it chose that size) and once the window began after it."""
    out: dict[str, float] = {}
    for t in live:
        key = t.tier.key
        sized_up_at_s = prior.sized_up_at_by_tier.get(key)
        if sized_up_at_s is not None and now_s - sized_up_at_s < t.observation.window_s:
            out[key] = sized_up_at_s
        elif first_decision(key, prior) and decisions[key].desired_replicas > t.current_replicas:
            out[key] = now_s
    return out


def _one_owner_each(
    tiers: Sequence[Tier], observations: Observations, prior: PlannerState
) -> tuple[list[Tier], dict[str, TierDecision]]:
    """The tiers that own their Deployment, and an InvalidSpec decision for every other."""
    kept, duplicates = one_tier_per_deployment(tiers)
    invalid = {
        tier.key: explain.invalid_spec(tier, owner, held_replicas(owner, observations, prior))
        for tier, owner in duplicates
    }
    return kept, invalid


def _spill_withdrawn(
    key: str, prior: PlannerState, trouble: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """(lender, why) for each pool the previous decision sent some of `key`'s traffic to
    and that lends nothing now: the borrower's message says where its spillover went."""
    before = prior.last_decisions.get(key)
    if before is None:
        return ()
    return tuple(
        (pool, trouble[pool])
        for pool, weight in sorted(before.weights_by_pool.items())
        if pool != key and weight > 0.0 and pool in trouble
    )


def _carried(
    before: Mapping[str, _V], held: Sequence[Tier], fresh: Mapping[str, _V]
) -> dict[str, _V]:
    """Held tiers keep what was learned about them; live tiers take this decision's values."""
    return {**{t.key: before[t.key] for t in held if t.key in before}, **fresh}


# 5-6. guard and stabilise -------------------------------------------------------------


def _guard_wish(live: LiveTier, replicas: int) -> int:
    """An observed breach adds a replica even if the model thinks the pool is big enough."""
    if live.breached and live.observation.rate_rps:
        return max(replicas, live.current_replicas + 1)
    return replicas


def _within_pool(live: LiveTier, replicas: int) -> int:
    """minReplicas <= replicas <= maxReplicas."""
    return min(max(replicas, live.tier.pool.min_replicas), live.tier.pool.max_replicas)


def _stabilized(
    live: LiveTier,
    raw: int,
    prior: PlannerState,
    now_s: float,
    models: Mapping[str, latency.LatencyModel],
    caps: Mapping[str, Mapping[str, float]],
) -> stabilize.Stabilized:
    obs = live.observation
    floor = max(
        live.tier.pool.min_replicas,
        stabilize.inflight_floor(
            obs.running_requests, obs.waiting_requests, models[live.tier.key].max_num_seqs
        ),
    )
    result = stabilize.stabilize(
        raw_replicas=raw,
        current_replicas=live.current_replicas,
        history=prior.recommendations_by_tier.get(live.tier.key, ()),
        now_s=now_s,
        window_s=live.tier.scaling.scale_down_stabilization_s,
        max_up=live.tier.scaling.max_scale_up_replicas,
        max_down=live.tier.scaling.max_scale_down_replicas,
        floor_replicas=floor,
        load_floor_replicas=load_floor_replicas(live, caps[live.tier.key].get(live.tier.key, 0.0)),
    )
    return result


def load_floor_replicas(live: LiveTier, capacity_rps: float) -> int:
    """Replicas the pool needs for the load it serves now (N -> N-1 predicted, not assumed).

    The load is the rate finishing on the pool (spilled-in traffic included), else the
    tier's own rate; each replica serves `capacity_rps` within the SLO (the predictor, the
    learned bias included). Nothing known: 0 (no floor)."""
    load_rps = served_load_rps(live.observation)
    if not load_rps or capacity_rps <= 0.0:
        return 0
    return needed_replicas(load_rps, capacity_rps) or 0


def _fit_budget(
    live: Sequence[LiveTier],
    stable: Mapping[str, int],
    target: Mapping[str, int],
    problem: allocation.AllocationProblem,
) -> tuple[dict[str, int], dict[str, allocation.GpuCap], dict[str, tuple[str, ...]]]:
    """Replicas beyond the exact allocation give way, lowest priority first, when GPUs run short.

    The stabiliser (holding replicas through its window) and the breach guard (adding one)
    may ask for more than the allocation; the allocation itself always fits every GPU cap,
    so trimming back toward it always restores the budget.

    A scale-up the allocation gives a tier gives way first to replicas held by a tier of at
    least its priority that is observed breaching its SLO (`_trim_order`): the budget does
    not hand a struggling higher priority's Ready replica to a lower priority's new one.
    Without this rule a priority-40 tier observed at 92 % of its 95 % lost a Ready replica
    to a priority-20 tier's new one (300 s to load) and took it back a minute later, 9
    scale events in 30 minutes (gen-s7-019: 83.4 % where `isolated` held 99.0 %). Held
    replicas of a tier meeting its SLO still give way at once: making every lower priority
    wait out a higher one's scale-down window starved gen-s2027-018's standard tier after
    each burst (86.2 -> 67.8 % of its 90 %).

    Returns the replicas; for each pool trimmed, the (last) cap that trimmed it; and for
    each scale-up cut, the tiers whose held replicas it gave way to.
    """
    desired = dict(stable)
    trimmed_by: dict[str, allocation.GpuCap] = {}
    yielded_to: dict[str, tuple[str, ...]] = {}
    gpus_by_pool = {p.name: p.gpus_per_replica for p in problem.pools}
    everything = {**dict(problem.fixed_replicas_by_pool), **desired}
    for cap in problem.budgets:
        over = sum(gpus_by_pool[k] * everything.get(k, 0) for k in cap.pools) - cap.gpus
        for t, floor in _trim_order([t for t in live if t.tier.key in cap.pools], target, desired):
            key = t.tier.key
            if over <= 0:
                break
            if desired[key] <= floor:
                continue
            cut = min(desired[key] - floor, math.ceil(over / gpus_by_pool[key]))
            desired[key] -= cut
            everything[key] = desired[key]
            over -= cut * gpus_by_pool[key]
            trimmed_by[key] = cap
            if floor < target[key]:
                yielded_to[key] = tuple(
                    h.tier.name
                    for h in live
                    if h.tier.key in cap.pools
                    and desired[h.tier.key] > target[h.tier.key]
                    and h.slo_breached
                    and h.tier.priority >= t.tier.priority
                )
    return desired, trimmed_by, yielded_to


def _trim_order(
    live: Sequence[LiveTier], target: Mapping[str, int], desired: Mapping[str, int]
) -> list[tuple[LiveTier, int]]:
    """(tier, the replicas a trim may take it down to), in the order trims take them.

    Two kinds of replicas can give way: those a tier holds above its allocation (down to
    the allocation), and a scale-up the allocation gives a tier while a tier of at least its
    priority, observed breaching its SLO, holds replicas above its own (down to what the
    tier runs now, never below its minReplicas). Lowest priority first, and at one
    priority the scale-up first: a held replica is Ready now, the new one serves only
    after its cold start."""
    holders = [
        t.tier.priority for t in live if desired[t.tier.key] > target[t.tier.key] and t.slo_breached
    ]
    order: list[tuple[tuple[int, int, str], LiveTier, int]] = []
    for t in live:
        key, priority = t.tier.key, t.tier.priority
        # A cut scale-up keeps what the tier runs now, and never less than its minReplicas.
        kept = min(max(t.current_replicas, t.tier.pool.min_replicas), target[key])
        if kept < target[key] and any(p >= priority for p in holders):
            order.append(((priority, 0, key), t, kept))
        order.append(((priority, 1, key), t, target[key]))
    return [(t, floor) for _, t, floor in sorted(order, key=lambda item: item[0])]
