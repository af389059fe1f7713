"""Step 4: the replicas each pool should have, as the exact allocation (`allocation.py`) says.

Turns live and held tiers into an `AllocationProblem` (lenders bounded to their own need,
GPU caps from the budget, held pools fixed) and, when GPUs run short, solves it with
every tier's present demand before any tier's margins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import allocation
from tierscale.policy.capacities import capacities
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier
from tierscale.policy.trace import needed_replicas
from tierscale_predictor import latency


def margins_last(
    live: Sequence[LiveTier],
    models: Mapping[str, latency.LatencyModel],
    problem: allocation.AllocationProblem,
    cfg: PlannerConfig,
    trouble: Mapping[str, str],
) -> allocation.Allocation:
    """When GPUs run short, every tier's present demand comes before any tier's margins.

    The full plan provisions each tier for its forecast (bursts, trend over the cold
    start) with the learned breach bias; under a binding budget, strict priority then
    spends a higher tier's safety margins before a lower tier's requests of today. So a
    lean problem first (demand as observed now, no bias) fixes each tier's floor by
    priority, and the full problem then spends what is left on margins, again by
    priority. 6-GPU budget crunch (`bench/planner_ablation.py`, 2 seeds): standard 20 ->
    28 %, batch 5 -> 14 % of requests in SLO, interactive 97.0 -> 96.0 %.

    For a `problem` that cannot be served in full (the caller's `allocation.serve_all`
    found no allocation): the full problem is solved once, above the lean floors.
    """
    lean_caps = _lean_capacities(live, models, problem, cfg, trouble)
    lean = allocation.solve(
        replace(
            problem,
            demands=[
                allocation.DemandSpec(t.tier.key, present_rate_rps(t), t.tier.priority, caps)
                for t, caps in zip(live, lean_caps, strict=True)
            ],
        ),
        settle=False,  # only the replicas are read: they are the floors
    )
    if lean.status == "optimal":
        floors = {
            p.name: min(max(p.min_replicas, lean.replicas_by_pool.get(p.name, 0)), p.max_replicas)
            for p in problem.pools
        }
        problem = replace(
            problem, pools=[replace(p, min_replicas=floors[p.name]) for p in problem.pools]
        )
    # Raised minimums only restrict the problem: it cannot be served in full either.
    return allocation.solve(problem, known_short=True)


def present_rate_rps(live: LiveTier) -> float:
    """A tier's demand as observed now, the floor `margins_last` gives it by priority.

    The window's rate, or where the forecast's step term read a step out of the window's
    rates (`forecast.step_rate`: the newest interval's rate, beyond the noise bar) that
    step: it is observed, not a margin. Without it the 60 s window, still mostly the old
    rate, kept a higher priority's present demand behind a lower one's: at S2's tier-mix
    inversion under the 20-GPU budget the 30 ms tier (priority 3), stepping 46 -> 67
    req/s, was cut 5 -> 3 replicas while the 100 ms tier (priority 1), whose window
    still read 94 req/s, kept 5. Standing headroom (`Scaling.headroom`) is a margin."""
    if live.demand.method == "step":
        return live.demand.forecast_rps
    return min(live.observation.rate_rps or 0.0, live.demand.rate_rps)


def own_pools_first(problem: allocation.AllocationProblem) -> allocation.Allocation | None:
    """Every tier on its own pool, when that serves all demand within the caps; else None.

    Spillover planned into replicas puts the borrower's own pool at exactly the capacity
    the model predicts and lets a lender's spare room stand in for the borrower's next
    replica. When the model is optimistic, or demand rises on every tier at once, that
    room is gone when it is needed and the replica it stood in for is a cold start away:
    on generated scenarios the borrowers then ended below what they get isolated
    (gen-s2027-020: batch at 88.6 % against 98.3 % isolated, on more GPU-hours;
    gen-s2027-014: a 300 s cold start deferred for 0.5 req/s of spill). The GPUs it
    saved were 0.0-0.9 % of the isolated plans' on seeds 7 and 2027. So spillover is
    planned only where the pools on their own cannot serve (maxReplicas or a GPU cap
    binds), where it is pure gain; today's routing still spills onto Ready spare
    capacity while replicas load (`route.route_now`).

    The replicas are the least each pool needs (its minimum, or its demand over its own
    capacity rounded up), held pools at their fixed count; None when a pool cannot serve
    its demand alone (no capacity, or more than its maximum) or a GPU cap is broken.
    """
    needs = _own_needs(problem)
    rate_rps = {d.name: d.rate_rps for d in problem.demands}
    replicas: dict[str, int] = {}
    flows: dict[tuple[str, str], float] = {}
    for pool in problem.pools:
        need = needs[pool.name]
        least, most = _bounds(problem, pool)
        if need is None or need > most:
            return None  # no capacity of its own, or more than its maxReplicas / held count
        if need > 0:
            flows[(pool.name, pool.name)] = rate_rps.get(pool.name, 0.0)
        replicas[pool.name] = max(need, least)
    if any(d.name not in replicas for d in problem.demands):
        return None  # a demand without a pool of its own
    if _breaks_a_cap(problem, replicas):
        return None
    unserved = {d.name: 0.0 for d in problem.demands}
    return allocation.Allocation(replicas, flows, unserved, "optimal")


def spill_where_short(problem: allocation.AllocationProblem) -> allocation.AllocationProblem:
    """The problem for the joint MILP once `own_pools_first` found no plan: spillover stays
    possible only for the tiers their own pool cannot serve, unless a GPU cap binds.

    When the pools on their own would break a GPU cap, every tier competes for GPUs and
    spillover onto a lender's spare room is pure gain, so every allowed pair stays. When
    they would not (a tier is short only of its maxReplicas, a held count or any capacity
    of its own), a tier its own pool can serve has no reason to borrow: without this, one
    tier reaching its maxReplicas sent the whole problem to the MILP and the MILP moved a
    tier that was not short onto a lender to save its replica, so twice the demand was
    planned on fewer GPUs than the demand itself (5 -> 4, found by
    `test_more_demand_never_yields_fewer_gpus`).
    """
    needs = _own_needs(problem)
    replicas: dict[str, int] = {}
    short: set[str] = set()
    for pool in problem.pools:
        need = needs[pool.name]
        least, most = _bounds(problem, pool)
        if need is None or need > most:
            short.add(pool.name)
        replicas[pool.name] = max(least, min(need or 0, most))
    if _breaks_a_cap(problem, replicas):
        return problem  # a GPU cap binds: spillover may pay for every tier
    return replace(
        problem,
        demands=[
            d
            if d.name in short or d.name not in replicas
            else replace(
                d,
                capacity_rps_by_pool={
                    k: v for k, v in d.capacity_rps_by_pool.items() if k == d.name
                },
            )
            for d in problem.demands
        ],
    )


def _own_needs(problem: allocation.AllocationProblem) -> dict[str, int | None]:
    """pool -> the replicas its own tier's demand needs on it alone (`trace.needed_replicas`;
    None: the tier has no capacity of its own there)."""
    demand_by_pool = {d.name: d for d in problem.demands}
    needs: dict[str, int | None] = {}
    for pool in problem.pools:
        demand = demand_by_pool.get(pool.name)
        rate_rps = demand.rate_rps if demand is not None else 0.0
        own_rps = demand.capacity_rps_by_pool.get(pool.name, 0.0) if demand else 0.0
        needs[pool.name] = needed_replicas(rate_rps, own_rps)
    return needs


def _bounds(problem: allocation.AllocationProblem, pool: allocation.PoolSpec) -> tuple[int, int]:
    """(least, most) replicas of a pool: its held count twice, else min and maxReplicas."""
    fixed = problem.fixed_replicas_by_pool.get(pool.name)
    return (fixed, fixed) if fixed is not None else (pool.min_replicas, pool.max_replicas)


def _breaks_a_cap(problem: allocation.AllocationProblem, replicas: Mapping[str, int]) -> bool:
    """Would these replicas (pool -> count) exceed any GPU cap?"""
    gpus = {p.name: p.gpus_per_replica for p in problem.pools}
    return any(
        sum(gpus[name] * replicas[name] for name in cap.pools if name in replicas) > cap.gpus
        for cap in problem.budgets
    )


def _lean_capacities(
    live: Sequence[LiveTier],
    models: Mapping[str, latency.LatencyModel],
    problem: allocation.AllocationProblem,
    cfg: PlannerConfig,
    trouble: Mapping[str, str],
) -> list[Mapping[str, float]]:
    """Capacities without the learned breach bias, one mapping per live tier, in order;
    a pool that lends nothing in the full problem (`lender_trouble`) lends nothing here.

    With no bias learned anywhere these are the full problem's own (the same predictor
    calls on the same inputs), so they are reused instead of computed again.
    """
    if all(t.bias == 1.0 for t in live):
        by_name = {d.name: d.capacity_rps_by_pool for d in problem.demands}
        return [by_name[t.tier.key] for t in live]
    # The same lenders as the full problem: a pool in trouble (biased up, say) lending
    # here would hold replicas for traffic the routing, with the bias, never sends.
    lean_caps = capacities([replace(t, bias=1.0) for t in live], models, cfg, trouble)
    return [lean_caps[t.tier.key] for t in live]


def pool_spec(tier: Tier) -> allocation.PoolSpec:
    """The tier's Deployment as the allocation sees it: GPUs per replica, min and max."""
    return allocation.PoolSpec(
        tier.key, tier.pool.gpus_per_replica, tier.pool.min_replicas, tier.pool.max_replicas
    )


def lender_spec(
    pool: LiveTier, live: Sequence[LiveTier], caps: Mapping[str, Mapping[str, float]]
) -> allocation.PoolSpec:
    """A pool others may spill into is never grown for their sake: they use its spare room.

    Spillover borrows the rounding slack of a tighter pool (PolyServe's idea); a replica
    added to a tight pool to carry loose traffic is a replica the loose pool would run
    more efficiently. Without this bound the solver is indifferent between the two when
    GPUs run short, and its choice flips between ticks: S2 runs moved replicas
    from the 100 ms pool to the 50 ms pool and back.
    """
    spec = pool_spec(pool.tier)
    key = pool.tier.key
    if not any(j.tier.key != key and key in caps[j.tier.key] for j in live):
        return spec
    own_capacity_rps = caps[key].get(key, 0.0)
    demand_rps = pool.demand.rate_rps
    own_need = math.ceil(demand_rps / own_capacity_rps - 1e-9) if own_capacity_rps > 0 else 0
    bound = min(max(own_need, spec.min_replicas), spec.max_replicas)
    return replace(spec, max_replicas=bound)


def gpu_caps(tiers: Sequence[Tier], budget: GpuBudget | None) -> list[allocation.GpuCap]:
    """The budget as caps over sets of pools: the cluster total and one per served model."""
    if budget is None:
        return []
    caps = []
    if budget.total_gpus is not None:
        caps.append(allocation.GpuCap(frozenset(t.key for t in tiers), budget.total_gpus))
    for model_name, gpus in budget.by_model:
        pools = frozenset(t.key for t in tiers if t.model == model_name)
        if pools:
            caps.append(allocation.GpuCap(pools, gpus, model_name))
    return caps
