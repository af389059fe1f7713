"""The faster allocation decides exactly as the solver before its speed-ups did.

Seeded random problems shaped like a large model group under a budget (priorities, spill
pairs from tighter pools, a cluster total and a per-model cap, held pools, zero demand)
go to `allocation.solve` and to the previous solver (`reference_allocation.py`); every
replica count, flow and unserved rate must be equal, not merely close, since the solver
now gets bit-for-bit the same model on every call.
"""

from __future__ import annotations

import random

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


@pytest.mark.parametrize("seed", SEEDS)
def test_solve_matches_the_previous_solver_exactly(seed: int) -> None:
    problem = _problem(seed)
    assert allocation.solve(problem) == reference_allocation.solve(problem)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_shortcuts_leave_the_replicas_unchanged(seed: int) -> None:
    problem = _problem(seed)
    expected = reference_allocation.solve(problem)
    assert allocation.solve(problem, settle=False).replicas_by_pool == expected.replicas_by_pool
    if expected.unserved_rps() > 0.0:  # the "everything served" attempt was infeasible
        assert allocation.solve(problem, known_short=True) == expected


def test_the_random_problems_reach_the_priority_path() -> None:
    """Guards the generator: without budget-limited problems the comparison proves little."""
    short = [s for s in SEEDS if reference_allocation.solve(_problem(s)).unserved_rps() > 0.0]
    assert len(short) >= len(SEEDS) // 4
