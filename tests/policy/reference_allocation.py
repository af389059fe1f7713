"""The allocation solver as it was before its speed-ups (main 2498b5b), kept as a reference.

`allocation.solve` now stacks the model's rows once instead of letting `milp` stack a list
of constraints on every call, builds them from coordinates instead of a LIL matrix, and
takes two caller shortcuts. None of that may change a decision, so the tests hand the same
random problems to both and require identical allocations. Only the parts that changed are
copied here; the unchanged helpers are imported.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, lil_array

from tierscale.policy.allocation import (
    UNSERVED_TOLERANCE_RPS,
    Allocation,
    AllocationProblem,
    _allocation,
    _bounds,
    _gpu_objective,
    _infeasible,
    _Layout,
    _layout,
    _rate,
    _spill_objective,
)


def _constraints(problem: AllocationProblem, layout: _Layout) -> list[LinearConstraint]:
    n_pools, n_demands = len(layout.pool_names), len(layout.demand_names)
    pool_index = {name: i for i, name in enumerate(layout.pool_names)}
    demand_index = {name: j for j, name in enumerate(layout.demand_names)}
    caps = {d.name: d.capacity_rps_by_pool for d in problem.demands}
    serve = lil_array((n_demands, layout.size))
    load = lil_array((n_pools, layout.size))
    for j in range(n_demands):
        serve[j, layout.u(j)] = 1.0
    for i in range(n_pools):
        load[i, layout.n(i)] = -1.0
    for k, (demand_name, pool_name) in enumerate(layout.pairs):
        serve[demand_index[demand_name], layout.x(k)] = 1.0
        load[pool_index[pool_name], layout.x(k)] = 1.0 / caps[demand_name][pool_name]
    rates = np.array([_rate(d) for d in problem.demands])
    constraints = [
        LinearConstraint(csr_array(serve), rates, rates),
        LinearConstraint(csr_array(load), -np.inf, np.zeros(n_pools)),
    ]
    for cap in problem.budgets:
        gpus = lil_array((1, layout.size))
        for i, pool in enumerate(problem.pools):
            if pool.name in cap.pools:
                gpus[0, layout.n(i)] = pool.gpus_per_replica
        constraints.append(LinearConstraint(csr_array(gpus), -np.inf, [cap.gpus]))
    return constraints


def _solve(
    cost: np.ndarray,
    constraints: list[LinearConstraint],
    bounds: tuple[np.ndarray, np.ndarray],
    integrality: np.ndarray,
) -> np.ndarray | None:
    result = milp(
        cost,
        constraints=constraints,
        bounds=Bounds(*bounds),
        integrality=integrality,
        options={"presolve": False},
    )
    if result.x is None or not result.success:
        return None
    return np.asarray(result.x, dtype=float)


def solve(problem: AllocationProblem) -> Allocation:
    layout = _layout(problem)
    if layout.size == 0:
        return Allocation({}, {}, {}, "optimal")
    bounds = _bounds(problem, layout)
    constraints = _constraints(problem, layout)
    integrality = np.zeros(layout.size)
    integrality[: len(layout.pool_names)] = 1
    full_lower, full_upper = bounds[0].copy(), bounds[1].copy()
    for j in range(len(layout.demand_names)):
        full_upper[layout.u(j)] = 0.0
    bounds_used = (full_lower, full_upper)
    x = _solve(_gpu_objective(problem, layout), constraints, bounds_used, integrality)
    if x is None:
        constraints, bounds_used, x = _solve_by_priority(
            problem, layout, constraints, bounds, integrality
        )
    if x is None:
        return _infeasible(problem, layout)
    return _allocation(
        problem, layout, _settle_flows(problem, layout, x, constraints, bounds_used), "optimal"
    )


def _settle_flows(
    problem: AllocationProblem,
    layout: _Layout,
    x: np.ndarray,
    constraints: list[LinearConstraint],
    bounds: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    lower, upper = bounds[0].copy(), bounds[1].copy()
    for i in range(len(layout.pool_names)):
        lower[layout.n(i)] = upper[layout.n(i)] = round(x[layout.n(i)])
    settled = _solve(
        _spill_objective(problem, layout), constraints, (lower, upper), np.zeros(layout.size)
    )
    return x if settled is None else settled


def _solve_by_priority(
    problem: AllocationProblem,
    layout: _Layout,
    constraints: list[LinearConstraint],
    bounds: tuple[np.ndarray, np.ndarray],
    integrality: np.ndarray,
) -> tuple[list[LinearConstraint], tuple[np.ndarray, np.ndarray], np.ndarray | None]:
    lower, upper = bounds[0].copy(), bounds[1].copy()
    no_cost = np.zeros(layout.size)
    for level in sorted({d.priority for d in problem.demands}, reverse=True):
        members = [j for j, d in enumerate(problem.demands) if d.priority == level]
        served_upper = upper.copy()
        for j in members:
            served_upper[layout.u(j)] = 0.0
        if _solve(no_cost, constraints, (lower, served_upper), integrality) is not None:
            upper = served_upper
            continue
        cost = np.zeros(layout.size)
        for j in members:
            cost[layout.u(j)] = 1.0
        x = _solve(cost, constraints, (lower, upper), integrality)
        if x is None:
            return constraints, (lower, upper), None
        best = sum(x[layout.u(j)] for j in members)
        constraints = [
            *constraints,
            LinearConstraint(cost[np.newaxis, :], -np.inf, [best + UNSERVED_TOLERANCE_RPS]),
        ]
    final = _solve(_gpu_objective(problem, layout), constraints, (lower, upper), integrality)
    return constraints, (lower, upper), final
