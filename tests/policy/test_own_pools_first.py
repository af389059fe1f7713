"""`target.own_pools_first`: every tier on its own pool when that serves all demand.

Checked against the exact solver on the random problems of the allocation reference test,
restricted to own pools (half of them with looser limits): wherever `own_pools_first`
answers, the solver serves everything with the same replicas, and wherever the solver
serves everything, it answers.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tierscale.policy import allocation
from tierscale.policy.allocation import AllocationProblem, DemandSpec, GpuCap, PoolSpec
from tierscale.policy.target import own_pools_first

from .test_allocation_reference import SEEDS, _problem


def _own_only(seed: int) -> AllocationProblem:
    """The reference test's problem with every demand on its own pool; odd seeds with 4x
    the GPU caps and 8x maxReplicas, so that both outcomes occur (the reference problems
    mostly fall short)."""
    problem = _problem(seed)
    loose = seed % 2 == 1
    return replace(
        problem,
        demands=[
            replace(d, capacity_rps_by_pool={d.name: d.capacity_rps_by_pool[d.name]})
            for d in problem.demands
        ],
        pools=[
            replace(p, max_replicas=p.max_replicas * (8 if loose else 1)) for p in problem.pools
        ],
        budgets=[replace(c, gpus=c.gpus * (4 if loose else 1)) for c in problem.budgets],
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_it_answers_exactly_where_the_solver_serves_every_tier_at_home(seed: int) -> None:
    problem = _own_only(seed)
    exact = allocation.solve(problem)
    own = own_pools_first(problem)
    if exact.status == "optimal" and exact.unserved_rps() == 0.0:
        assert own is not None
        assert own.replicas_by_pool == exact.replicas_by_pool
        assert own.unserved_rps() == 0.0
    else:
        assert own is None


def test_the_random_problems_reach_both_answers() -> None:
    """Guards the generator: both outcomes must occur for the comparison to prove much."""
    answers = [own_pools_first(_own_only(s)) is not None for s in SEEDS]
    assert 5 <= sum(answers) <= len(SEEDS) - 5


POOLS = [PoolSpec("tight", 1, 1, 4), PoolSpec("loose", 2, 0, 3)]


def _with(
    loose_rps: float,
    *,
    budgets: tuple[GpuCap, ...] = (),
    fixed: dict[str, int] | None = None,
    loose_capacity_rps: float = 2.0,
) -> AllocationProblem:
    return AllocationProblem(
        POOLS,
        [
            DemandSpec("tight", 1.0, 10, {"tight": 1.5}),
            DemandSpec("loose", loose_rps, 0, {"loose": loose_capacity_rps, "tight": 1.0}),
        ],
        budgets,
        fixed or {},
    )


def test_each_pool_gets_its_demand_over_its_own_capacity_rounded_up() -> None:
    own = own_pools_first(_with(4.1))
    assert own is not None
    assert own.replicas_by_pool == {"tight": 1, "loose": 3}
    assert own.flow_rps_by_demand_pool == {("tight", "tight"): 1.0, ("loose", "loose"): 4.1}
    assert own_pools_first(_with(4.0)) == replace(
        own,
        replicas_by_pool={"tight": 1, "loose": 2},
        flow_rps_by_demand_pool={("tight", "tight"): 1.0, ("loose", "loose"): 4.0},
    )


def test_no_demand_is_the_pools_minimum() -> None:
    own = own_pools_first(_with(0.0))
    assert own is not None and own.replicas_by_pool == {"tight": 1, "loose": 0}


@pytest.mark.parametrize(
    ("problem", "why"),
    [
        (_with(6.1), "more than maxReplicas"),
        (_with(1.0, loose_capacity_rps=0.0), "no capacity of its own"),
        (_with(4.1, budgets=(GpuCap(frozenset({"tight", "loose"}), 6),)), "a cap broken"),
        (_with(4.1, fixed={"loose": 2}), "a held pool below its need"),
    ],
)
def test_it_leaves_the_problem_to_the_solver_when_the_pools_alone_fall_short(
    problem: AllocationProblem, why: str
) -> None:
    assert own_pools_first(problem) is None, why


def test_a_held_pool_keeps_its_count_and_counts_in_the_caps() -> None:
    own = own_pools_first(
        _with(1.0, budgets=(GpuCap(frozenset({"tight", "loose"}), 7),), fixed={"loose": 3})
    )
    assert own is not None and own.replicas_by_pool == {"tight": 1, "loose": 3}
    assert (
        own_pools_first(
            _with(1.0, budgets=(GpuCap(frozenset({"tight", "loose"}), 6),), fixed={"loose": 3})
        )
        is None
    )
