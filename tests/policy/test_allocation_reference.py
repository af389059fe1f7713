"""The faster allocation decides as well as the solver before its speed-ups did.

Seeded random problems shaped like a large model group under a budget (priorities, spill
pairs from tighter pools, a cluster total and a per-model cap, held pools, zero demand)
go to `allocation.solve` and to the previous solver (`reference_allocation.py`). Since
HiGHS runs without its primal heuristics (`allocation._MIP_OPTIONS`) it may return
another of several equal optima, so the two must agree on what is optimised (unserved
demand per priority level, then GPUs), and with the previous solver's replicas as the
preferred ones (`preferred_replicas_by_pool`) on exactly those replicas.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from tierscale.policy import allocation
from tierscale.policy.allocation import AllocationProblem, DemandSpec, GpuCap, PoolSpec

from . import reference_allocation

SEEDS = range(40)


def _problem(seed: int) -> AllocationProblem:
    rng = random.Random(seed)
    n = rng.randint(2, 9)
    pools = []
    for i in range(n):
        low = rng.choice((0, 0, 0, 1))
        pools.append(PoolSpec(f"p{i}", rng.choice((1, 1, 2)), low, rng.randint(max(low, 1), 12)))
    demands = []
    for j in range(n):
        caps = {f"p{j}": rng.uniform(0.3, 6.0)}
        for p in range(j):  # pool p is tighter than tier j
            if rng.random() < 0.6:
                caps[f"p{p}"] = caps[f"p{j}"] * rng.uniform(0.4, 1.0)
        rate = 0.0 if rng.random() < 0.1 else rng.uniform(0.2, 25.0)
        demands.append(DemandSpec(f"p{j}", rate, rng.randint(0, 3), caps))
    need = sum(p.gpus_per_replica * p.min_replicas for p in pools)
    total = need + rng.randint(0, 6 * n)
    budgets = [GpuCap(frozenset(p.name for p in pools), total)]
    if rng.random() < 0.3:
        some = frozenset(p.name for p in pools[: n // 2 + 1])
        budgets.append(GpuCap(some, max(total // 2, 1), "model-a"))
    fixed = {pools[-1].name: rng.randint(0, 2)} if rng.random() < 0.2 else {}
    return AllocationProblem(pools, demands, budgets, fixed)


UNSERVED_SLACK_RPS = 1e-4
"""The widest slack a frozen priority level may be given (`FREEZE_RETRY_SLACKS_RPS`)."""


def _gpus(problem: AllocationProblem, result: allocation.Allocation) -> int:
    return sum(p.gpus_per_replica * result.replicas_by_pool[p.name] for p in problem.pools)


def _unserved_by_level(
    problem: AllocationProblem, result: allocation.Allocation
) -> dict[int, float]:
    out: dict[int, float] = {}
    for d in problem.demands:
        out[d.priority] = out.get(d.priority, 0.0) + result.unserved_rps_by_demand[d.name]
    return out


def _carried(problem: AllocationProblem, result: allocation.Allocation) -> None:
    """Every pool carries what it is given within its replicas; every demand is accounted."""
    caps = {d.name: d.capacity_rps_by_pool for d in problem.demands}
    load: dict[str, float] = {}
    for (tier, pool), rps in result.flow_rps_by_demand_pool.items():
        load[pool] = load.get(pool, 0.0) + rps / caps[tier][pool]
    for pool, replicas_used in load.items():
        assert replicas_used <= result.replicas_by_pool[pool] + 1e-5
    for d in problem.demands:
        routed = sum(r for (t, _), r in result.flow_rps_by_demand_pool.items() if t == d.name)
        assert routed + result.unserved_rps_by_demand[d.name] == pytest.approx(
            allocation._rate(d), abs=1e-4
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_solve_is_as_good_as_the_previous_solver(seed: int) -> None:
    problem = _problem(seed)
    got, expected = allocation.solve(problem), reference_allocation.solve(problem)
    assert got.status == expected.status
    want = _unserved_by_level(problem, expected)
    for level, unserved_rps in _unserved_by_level(problem, got).items():
        assert unserved_rps == pytest.approx(want[level], abs=2 * UNSERVED_SLACK_RPS)
    assert _gpus(problem, got) == _gpus(problem, expected)
    _carried(problem, got)


@pytest.mark.parametrize("seed", SEEDS)
def test_preferring_the_previous_replicas_keeps_them(seed: int) -> None:
    problem = _problem(seed)
    expected = reference_allocation.solve(problem)
    preferring = replace(problem, preferred_replicas_by_pool=dict(expected.replicas_by_pool))
    assert allocation.solve(preferring).replicas_by_pool == expected.replicas_by_pool


@pytest.mark.parametrize("seed", SEEDS)
def test_the_shortcuts_leave_the_replicas_unchanged(seed: int) -> None:
    problem = _problem(seed)
    expected = allocation.solve(problem)
    assert allocation.solve(problem, settle=False).replicas_by_pool == expected.replicas_by_pool
    if expected.unserved_rps() > 0.0:  # the "everything served" attempt was infeasible
        assert allocation.solve(problem, known_short=True) == expected


def test_the_random_problems_reach_the_priority_path() -> None:
    """Guards the generator: without budget-limited problems the comparison proves little."""
    short = [s for s in SEEDS if reference_allocation.solve(_problem(s)).unserved_rps() > 0.0]
    assert len(short) >= len(SEEDS) // 4
