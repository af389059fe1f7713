"""The joint allocation problem: integer replicas per pool plus spillover flows, exactly.

This is the numeric heart of the planner, kept free of tiers, SLOs and Kubernetes so it
can be checked against brute force. Every other policy module turns domain objects into
an `AllocationProblem` and an `Allocation` back into decisions.

Model (all rates per second, capacities per replica):

    minimise   sum_p gpus_p * n_p  +  spill_cost * sum_{j != p} x_jp / cap_jp
    subject to sum_p x_jp + u_j = demand_j                      for every tier j
               sum_j x_jp / cap_jp <= n_p                        for every pool p
               sum_{p in P_c} gpus_p * n_p <= gpus_c             for every GPU cap c
               min_p <= n_p <= max_p, n_p integer;  x, u >= 0

`cap_jp` is the rate of tier j's requests one replica of pool p serves within *p's* SLO
(the tighter one), so a pool with mixed traffic runs at its own batch limit. A pair
(j, p) exists only where spillover is allowed and safe; every tier may use its own pool.
When demand cannot be served in full (budget, maxReplicas), unserved demand `u` is
minimised lexicographically by priority, highest first, and only then GPUs: a higher
priority tier is never starved to serve a lower one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy.optimize import LinearConstraint
from scipy.sparse import coo_array, csc_array, vstack

SPILL_COST = 1e-3
"""GPU-equivalents charged per replica-worth of spilled traffic: breaks ties toward own pools."""
UNSERVED_TOLERANCE_RPS = 1e-7
"""Slack when a priority level's optimum is frozen before the next level is solved."""
FREEZE_RETRY_SLACKS_RPS = (1e-5, 1e-4)
"""Wider slacks tried, in order, when a frozen optimum proves out of reach of the next
solve. HiGHS accepts a MIP solution that breaks a row by up to its feasibility tolerance
(1e-6), so a level's optimum can be a hair better than any solution the next solve can
find: at 1e-7 alone, about 1 in 200 random budget problems came out "infeasible" (every
pool at its minimum) although the minimums fit (`test_a_frozen_level_never_makes_...`)."""
NEGLIGIBLE_RATE_RPS = 1e-6
"""Demand below this (one request in ~12 days) is zero: it sits under the solver's tolerance."""


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """One pool's integer decision variable."""

    name: str
    gpus_per_replica: int
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True, slots=True)
class GpuCap:
    """At most `gpus` GPUs over the replicas of `pools`."""

    pools: frozenset[str]
    gpus: int
    model: str | None = None
    """The served model this cap is for; None for the cluster-wide total (for messages)."""


@dataclass(frozen=True, slots=True)
class DemandSpec:
    """One tier's demand and where it may be served."""

    name: str
    rate_rps: float
    priority: int
    capacity_rps_by_pool: Mapping[str, float]
    """pool name -> requests/s of this tier one replica of that pool serves within SLO."""


@dataclass(frozen=True, slots=True)
class AllocationProblem:
    pools: Sequence[PoolSpec]
    demands: Sequence[DemandSpec]
    budgets: Sequence[GpuCap] = ()
    """GPU caps, each over a set of pools (cluster-wide total, per-model caps)."""
    fixed_replicas_by_pool: Mapping[str, int] = field(default_factory=dict)
    """Pools whose replica count is not a decision (e.g. held on stale metrics)."""
    preferred_replicas_by_pool: Mapping[str, int] = field(default_factory=dict)
    """Among the allocations with the fewest GPUs (after unserved demand by priority),
    these replicas where they are one of them: the pools' present replicas, so that equal
    optima do not alternate between decisions (`_kept`)."""


@dataclass(frozen=True, slots=True)
class Allocation:
    replicas_by_pool: Mapping[str, int]
    flow_rps_by_demand_pool: Mapping[tuple[str, str], float]
    """(tier, pool) -> requests/s of the tier planned onto the pool."""
    unserved_rps_by_demand: Mapping[str, float]
    status: str
    """'optimal'; 'infeasible' when even the minimum replicas break the budget;
    'approximate' when the solver failed numerically below the highest level that could
    not be fully served (that level and those above it are served as well as they can be,
    the rest is not optimised)."""

    def unserved_rps(self) -> float:
        return sum(self.unserved_rps_by_demand.values())


@dataclass(frozen=True, slots=True)
class _Layout:
    """Column indices of the decision vector [n_p..., x_jp..., u_j...]."""

    pool_names: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    demand_names: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.pool_names) + len(self.pairs) + len(self.demand_names)

    def n(self, i: int) -> int:
        return i

    def x(self, k: int) -> int:
        return len(self.pool_names) + k

    def u(self, j: int) -> int:
        return len(self.pool_names) + len(self.pairs) + j


def _layout(problem: AllocationProblem) -> _Layout:
    pool_names = tuple(p.name for p in problem.pools)
    known = set(pool_names)
    pairs = tuple(
        (d.name, pool)
        for d in problem.demands
        for pool, cap in sorted(d.capacity_rps_by_pool.items())
        if pool in known and cap > 0.0
    )
    return _Layout(pool_names, pairs, tuple(d.name for d in problem.demands))


def _bounds(problem: AllocationProblem, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    lower = np.zeros(layout.size)
    upper = np.full(layout.size, np.inf)
    for i, pool in enumerate(problem.pools):
        fixed = problem.fixed_replicas_by_pool.get(pool.name)
        lo, hi = (fixed, fixed) if fixed is not None else (pool.min_replicas, pool.max_replicas)
        lower[layout.n(i)], upper[layout.n(i)] = lo, hi
    for j, demand in enumerate(problem.demands):
        upper[layout.u(j)] = _rate(demand)
    return lower, upper


def _constraints(problem: AllocationProblem, layout: _Layout) -> LinearConstraint:
    """Every row of the model as one constraint (serve rows, load rows, GPU caps, in order).

    Stacked once here rather than by `milp` on every solve: a budget-limited plan solves
    dozens of times over the same rows, and the stacking cost as much as a small solve.
    """
    n_pools, n_demands = len(layout.pool_names), len(layout.demand_names)
    pool_index = {name: i for i, name in enumerate(layout.pool_names)}
    demand_index = {name: j for j, name in enumerate(layout.demand_names)}
    caps = {d.name: d.capacity_rps_by_pool for d in problem.demands}

    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []

    def put(row: int, col: int, value: float) -> None:
        rows.append(row)
        cols.append(col)
        values.append(value)

    for j in range(n_demands):  # row j: sum_p x_jp + u_j = demand_j
        put(j, layout.u(j), 1.0)
    for i in range(n_pools):  # row n_demands + p: sum_j x_jp / cap_jp - n_p <= 0
        put(n_demands + i, layout.n(i), -1.0)
    for k, (demand_name, pool_name) in enumerate(layout.pairs):
        put(demand_index[demand_name], layout.x(k), 1.0)
        put(n_demands + pool_index[pool_name], layout.x(k), 1.0 / caps[demand_name][pool_name])
    for c, cap in enumerate(problem.budgets):  # sum_{p in cap} gpus_p * n_p <= gpus
        for i, pool in enumerate(problem.pools):
            if pool.name in cap.pools:
                put(n_demands + n_pools + c, layout.n(i), float(pool.gpus_per_replica))
    rates = np.array([_rate(d) for d in problem.demands], dtype=np.float64)
    n_rows = n_demands + n_pools + len(problem.budgets)
    matrix = coo_array((values, (rows, cols)), shape=(n_rows, layout.size)).tocsc()
    matrix.sum_duplicates()
    lower = np.concatenate([rates, np.full(n_pools + len(problem.budgets), -np.inf)])
    upper = np.concatenate(
        [rates, np.zeros(n_pools), np.array([c.gpus for c in problem.budgets], dtype=np.float64)]
    )
    return LinearConstraint(matrix, lower, upper)


def _with_row(constraints: LinearConstraint, row: np.ndarray, upper: float) -> LinearConstraint:
    """The constraints plus one row `row @ x <= upper`."""
    matrix = vstack([csc_array(constraints.A), csc_array(row[np.newaxis, :])], format="csc")
    return LinearConstraint(
        matrix,
        np.append(constraints.lb, -np.inf),
        np.append(constraints.ub, upper),
    )


def _gpu_objective(problem: AllocationProblem, layout: _Layout) -> np.ndarray:
    """GPUs only: an integral objective lets HiGHS round its bound and stop early."""
    cost = np.zeros(layout.size)
    for i, pool in enumerate(problem.pools):
        cost[layout.n(i)] = pool.gpus_per_replica
    return cost


def _spill_objective(problem: AllocationProblem, layout: _Layout) -> np.ndarray:
    """Replica-worth of traffic served away from its own pool: the tie-breaker of phase 2."""
    cost = np.zeros(layout.size)
    caps = {d.name: d.capacity_rps_by_pool for d in problem.demands}
    for k, (demand_name, pool_name) in enumerate(layout.pairs):
        if demand_name != pool_name:
            cost[layout.x(k)] = SPILL_COST / caps[demand_name][pool_name]
    return cost


_MIP_OPTIONS: tuple[tuple[str, bool | int], ...] = (
    ("mip_heuristic_run_feasibility_jump", False),
    ("mip_heuristic_run_rens", False),
    ("mip_heuristic_run_rins", False),
    ("mip_heuristic_run_root_reduced_cost", False),
    ("mip_heuristic_run_shifting", False),
    ("mip_heuristic_run_zi_round", False),
    ("mip_detect_symmetry", False),
    ("mip_pscost_minreliable", 0),
)
"""HiGHS options for every MILP: its primal heuristics and symmetry detection off, and
branching on pseudo-costs from the first node (no strong-branching warm-up). On these
small models (at 20 tiers ~40 rows, ~200 columns, 20 integer) they cost more than they
find: the 293 MILPs of 200 plans at 20 tiers took 3,884 ms with these options and 5,448
ms with the feasibility jump alone off (as before), the slowest 140 against 360 ms, every
optimum the same (`python -m bench.solver_options --tiers 20 --repeats 200`,
docs/plan-latency.md). They also silence a line HiGHS 1.12's sub-MIP heuristic printed to
stdout despite `output_flag`. Which of several equal optima HiGHS returns then changes,
so the present replicas break ties where they can (`_kept`), not the solver."""


def _solve(
    cost: np.ndarray,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    integrality: np.ndarray,
    mip_options: tuple[tuple[str, bool | int], ...] = _MIP_OPTIONS,
) -> np.ndarray | None:
    """min cost @ x over the rows and bounds (`integrality` 1 marks an integer column);
    None unless HiGHS proves an optimum. A MILP runs with `mip_options` (the planner's
    `_MIP_OPTIONS`; `bench/solver_options.py` compares others).

    HiGHS is called through its own Python binding (`highspy`, the HiGHS scipy 1.17
    bundles): scipy's `milp` wrapper around the same solver validated its options and
    rebuilt its arrays on every call, ~1 ms of Python per solve (0.8-1.3 ms measured), and
    a budget-limited plan at 20 tiers solves ten times or more (docs/plan-latency.md). The
    same plans: `bench/plan_latency.py --digest` is unchanged, and of the 4,389 solves
    behind `tests.policy.replay_plans --scenarios 200` 106 LPs differ from scipy's (a
    one-off comparison), by at most 1e-7 (a frozen level's slack) in a flow, no replica
    count."""
    matrix = csc_array(constraints.A)
    n_rows, n_cols = matrix.shape
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.asarray(bounds[0], dtype=np.float64)
    lp.col_upper_ = np.asarray(bounds[1], dtype=np.float64)
    lp.row_lower_ = np.broadcast_to(np.asarray(constraints.lb, dtype=np.float64), (n_rows,))
    lp.row_upper_ = np.broadcast_to(np.asarray(constraints.ub, dtype=np.float64), (n_rows,))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n_cols
    lp.a_matrix_.num_row_ = n_rows
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    mip = bool(np.any(integrality))
    if mip:
        lp.integrality_ = [_INTEGER if flag else _CONTINUOUS for flag in integrality]
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("presolve", "off")
    if mip:
        for option, value in mip_options:
            solver.setOptionValue(option, value)
    solver.passModel(lp)
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(solver.getSolution().col_value, dtype=np.float64)


_INTEGER = highspy.HighsVarType.kInteger
_CONTINUOUS = highspy.HighsVarType.kContinuous


@dataclass(frozen=True, slots=True)
class _Model:
    """One problem's layout, bounds, rows and integrality, built once for every solve."""

    layout: _Layout
    bounds: tuple[np.ndarray, np.ndarray]
    constraints: LinearConstraint
    integrality: np.ndarray


def _model(problem: AllocationProblem) -> _Model:
    layout = _layout(problem)
    integrality = np.zeros(layout.size)
    integrality[: len(layout.pool_names)] = 1
    return _Model(layout, _bounds(problem, layout), _constraints(problem, layout), integrality)


def serve_all(problem: AllocationProblem, *, settle: bool = True) -> Allocation | None:
    """The minimum-GPU allocation that serves every demand in full; None when none does.

    The first step of `solve`, for callers that do something else when demand cannot be
    served in full (`target.margins_last`): they skip the lexicographic solve `solve`
    would run next.
    """
    model = _model(problem)
    if model.layout.size == 0:
        return Allocation({}, {}, {}, "optimal")
    return _serve_all(problem, model, settle)


def _serve_all(problem: AllocationProblem, model: _Model, settle: bool) -> Allocation | None:
    layout = model.layout
    lower, upper = model.bounds[0].copy(), model.bounds[1].copy()
    for j in range(len(layout.demand_names)):
        upper[layout.u(j)] = 0.0  # everything served
    gpus = _gpu_objective(problem, layout)
    if _relaxation(gpus, model.constraints, (lower, upper)) is None:
        return None  # not even with fractional replicas: no integer allocation either
    x = _solve(gpus, model.constraints, (lower, upper), model.integrality)
    if x is None:
        return None
    x, settled = _kept(problem, layout, x, model.constraints, (lower, upper), settle)
    if settle and not settled:
        x = _settle_flows(problem, layout, x, model.constraints, (lower, upper))
    return _allocation(problem, layout, x, "optimal")


def solve(
    problem: AllocationProblem, *, known_short: bool = False, settle: bool = True
) -> Allocation:
    """Minimum-GPU allocation serving all demand, or the priority-lexicographic best.

    Phase 1 finds the replicas (a MILP whose objective is whole GPUs, so the solver's
    bound closes as soon as it is within one GPU). Phase 2 fixes those replicas and picks
    the flows that keep traffic in its own pool where possible (an LP). A tie-breaking cost
    inside phase 1 would make the objective fractional and the proof of optimality slow.

    Two shortcuts for callers that know more, each leaving the replicas unchanged:
    `known_short` skips the "everything served" attempt (`serve_all`) when the caller has
    proof it is infeasible (a restriction of a problem that could not be served in full),
    and `settle=False` skips phase 2 for callers that read only the replicas (the flows
    are then phase 1's, not the ones that keep traffic at home).
    """
    model = _model(problem)
    layout = model.layout
    if layout.size == 0:
        return Allocation({}, {}, {}, "optimal")
    served = None if known_short else _serve_all(problem, model, settle)
    if served is not None:
        return served
    ranked = _solve_by_priority(problem, layout, model.constraints, model.bounds, model.integrality)
    x, status, settled = ranked.x, "optimal", False
    if x is not None:
        x, settled = _kept(problem, layout, x, ranked.constraints, ranked.bounds, settle)
    if x is None and ranked.incumbent is not None:
        # Numerical trouble at every slack: what the higher levels were given.
        x, status = ranked.incumbent, "approximate"
    if x is None:
        return _infeasible(problem, layout)
    if settle and not settled:
        x = _settle_flows(problem, layout, x, ranked.constraints, ranked.bounds)
    return _allocation(problem, layout, x, status, ranked.slack_rps)


ROUTING_PRIORITY_BASE = 10.0
"""Unserved-demand penalty grows by this factor per distinct priority level when routing."""
ROUTING_MAX_LEVELS = 6
"""Levels above this share the top penalty (10^6): keeps the LP numerically well scaled."""


def route(problem: AllocationProblem) -> Allocation:
    """Flows over replicas that are all fixed (Ready now): one LP, no integer variables.

    Unserved demand costs 10^(priority level) per request/s, so spare capacity goes to
    the higher priority first; spilled traffic costs a little, so it stays home if it can.
    Exact lexicographic priority is what `solve` does for the replicas it decides; for
    today's routing one well-scaled LP is enough and keeps the control loop fast.
    """
    layout = _layout(problem)
    if layout.size == 0:
        return Allocation({}, {}, {}, "optimal")
    levels = sorted({d.priority for d in problem.demands})
    cost = _spill_objective(problem, layout)
    for j, demand in enumerate(problem.demands):
        rank = min(levels.index(demand.priority), ROUTING_MAX_LEVELS)
        cost[layout.u(j)] = ROUTING_PRIORITY_BASE**rank
    x = _solve(cost, _constraints(problem, layout), _bounds(problem, layout), np.zeros(layout.size))
    if x is None:
        return _infeasible(problem, layout)
    return _allocation(problem, layout, x, "optimal")


def _settle_flows(
    problem: AllocationProblem,
    layout: _Layout,
    x: np.ndarray,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Phase 2: with replicas fixed, route as little traffic away from its own pool as possible."""
    lower, upper = bounds[0].copy(), bounds[1].copy()
    for i in range(len(layout.pool_names)):
        lower[layout.n(i)] = upper[layout.n(i)] = round(x[layout.n(i)])
    settled = _solve(
        _spill_objective(problem, layout), constraints, (lower, upper), np.zeros(layout.size)
    )
    return x if settled is None else settled


@dataclass(frozen=True, slots=True)
class _Ranked:
    """The outcome of the lexicographic solve."""

    constraints: LinearConstraint
    """The model's rows plus one frozen row per level that could not be fully served."""
    bounds: tuple[np.ndarray, np.ndarray]
    x: np.ndarray | None
    """The minimum-GPU solution within every level's optimum; None if none was found."""
    incumbent: np.ndarray | None
    """The last solution found on the way (meets every level frozen before it)."""
    slack_rps: float
    """The slack each frozen level was given."""


def _solve_by_priority(
    problem: AllocationProblem,
    layout: _Layout,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    integrality: np.ndarray,
) -> _Ranked:
    """Minimise unserved demand level by level (highest priority first), then GPUs.

    A failure at the first level is the problem's own (the minimums break a cap); a
    failure after a level was frozen is numerical, and the whole ranking is solved again
    with a wider slack (`FREEZE_RETRY_SLACKS_RPS`).
    """
    ranked = _rank(problem, layout, constraints, bounds, integrality, UNSERVED_TOLERANCE_RPS)
    for slack_rps in FREEZE_RETRY_SLACKS_RPS:
        if ranked.x is not None or ranked.incumbent is None:
            break
        ranked = _rank(problem, layout, constraints, bounds, integrality, slack_rps)
    return ranked


def _rank(
    problem: AllocationProblem,
    layout: _Layout,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    integrality: np.ndarray,
    slack_rps: float,
) -> _Ranked:
    """One lexicographic pass, each level's optimum frozen with `slack_rps`.

    Each level is first tried fully served, a pure feasibility problem the solver answers
    at its first feasible point; only a level that cannot be fully served gets the
    (slower) optimisation of its unserved demand. Both freeze the level before the next.
    """
    lower, upper = bounds[0].copy(), bounds[1].copy()
    gpus = _gpu_objective(problem, layout)
    incumbent: np.ndarray | None = None
    for level in sorted({d.priority for d in problem.demands}, reverse=True):
        members = [j for j, d in enumerate(problem.demands) if d.priority == level]
        served_upper = upper.copy()
        for j in members:
            served_upper[layout.u(j)] = 0.0
        served = _constructed_point(problem, layout, constraints, (lower, served_upper))
        if served is None and incumbent is not None:
            served = _constructed_point(
                problem, layout, constraints, (lower, served_upper), incumbent
            )
        if served is None:
            served = _servable(gpus, constraints, (lower, served_upper), integrality)
        if served is not None:
            upper, incumbent = served_upper, served
            continue
        cost = np.zeros(layout.size)
        for j in members:
            cost[layout.u(j)] = 1.0
        x = _solve(cost, constraints, (lower, upper), integrality)
        if x is None:
            return _Ranked(constraints, (lower, upper), None, incumbent, slack_rps)
        incumbent = x
        best = sum(x[layout.u(j)] for j in members)
        constraints = _with_row(constraints, cost, best + slack_rps)
    final = _fewest_proven(gpus, constraints, (lower, upper), incumbent)
    if final is None:
        final = _solve(gpus, constraints, (lower, upper), integrality)
    return _Ranked(constraints, (lower, upper), final, incumbent, slack_rps)


def _fewest_proven(
    gpus: np.ndarray,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    point: np.ndarray | None,
) -> np.ndarray | None:
    """`point` where it meets every row and bound and the LP relaxation proves no point
    uses fewer GPUs (its optimum, rounded up to whole GPUs, is the point's); else None.

    The last level's point often has the fewest GPUs already (a constructed point, or the
    optimum of the level's unserved demand); the final MILP then only proves it.
    """
    if point is None or not _within(constraints, bounds, point, MIP_FEASIBILITY_TOLERANCE):
        return None
    relaxed = _relaxation(gpus, constraints, bounds)
    if relaxed is None:
        return None
    bound = float(np.ceil(float(gpus @ relaxed) - GPU_ROUNDING))
    return point if float(gpus @ point) <= bound + GPU_ROUNDING else None


GPU_ROUNDING = 1e-6
"""GPU totals are whole numbers; this far from one counts as it."""


def _kept(
    problem: AllocationProblem,
    layout: _Layout,
    x: np.ndarray,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    settle: bool,
) -> tuple[np.ndarray, bool]:
    """The pools' preferred replicas (`problem.preferred_replicas_by_pool`, within their
    bounds; `x`'s for a pool without one) where they are as good as `x`: no more GPUs,
    and flows within every row (the frozen priority levels included), found by one LP
    with the replicas fixed; else `x`. The flag says the flows are already settled: with
    `settle`, that LP minimises spill (`_settle_flows`'s LP exactly), so no second LP runs.

    `x` has the fewest GPUs, so the result does as well: this only breaks ties, which
    HiGHS otherwise breaks by the path its search took, differently from one decision to
    the next as demand moves a little. Only the present replicas are tried, not the
    nearest optimum: an exact nearest is a MILP of its own, ~15 ms at 20 tiers and up to
    ~250 ms on some (a one-off measurement, docs/plan-latency.md), and keeping what the
    pools have where it is still optimal is what stops the alternation.
    """
    lower, upper = bounds[0].copy(), bounds[1].copy()
    same = True
    for i, pool in enumerate(problem.pools):
        col = layout.n(i)
        now = float(round(x[col]))
        preferred = problem.preferred_replicas_by_pool.get(pool.name)
        want = now if preferred is None else float(min(max(preferred, lower[col]), upper[col]))
        same = same and want == now
        lower[col] = upper[col] = want
    if same:
        return x, False
    gpus = _gpu_objective(problem, layout)
    if float(gpus @ lower) > float(gpus @ x) + GPU_ROUNDING:
        return x, False
    cost = _spill_objective(problem, layout) if settle else np.zeros(layout.size)
    kept = _solve(cost, constraints, (lower, upper), np.zeros(layout.size))
    return (x, False) if kept is None else (kept, settle)


MIP_FEASIBILITY_TOLERANCE = 1e-6
"""How far HiGHS lets a MIP solution break a row or bound (its `mip_feasibility_tolerance`)."""


def _relaxation(
    gpus: np.ndarray, constraints: LinearConstraint, bounds: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    """The fewest-GPU point of the LP relaxation with every row and bound widened by
    `MIP_FEASIBILITY_TOLERANCE` (replicas may be fractional); None proves that the MILP
    has no point the solver would accept either.

    An LP costs a fraction of a MILP (~1.3 ms against ~5 ms at 20 tiers: HiGHS runs its
    feasibility-jump heuristic and root cuts before it gives up), and where GPUs run
    short the "everything served" attempt and a level's "fully served?" check are
    mostly infeasible already without integrality. Widened, because the solver accepts
    a MIP solution that breaks a row by up to its tolerance: a level's frozen optimum can
    be a hair better than the exact rows allow (`FREEZE_RETRY_SLACKS_RPS`), and an exact
    LP would then say "no" where the MILP finds its point.
    """
    slack = MIP_FEASIBILITY_TOLERANCE
    widened = LinearConstraint(constraints.A, constraints.lb - slack, constraints.ub + slack)
    return _solve(gpus, widened, (bounds[0] - slack, bounds[1] + slack), np.zeros(gpus.size))


def _servable(
    gpus: np.ndarray,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    integrality: np.ndarray,
) -> np.ndarray | None:
    """A level's "fully served?" check where no constructed point answered it: a point of
    the MILP, or None where it has none.

    The relaxation first (`_relaxation`): infeasible, it answers "no"; feasible, its
    flows with each pool's replicas rounded up (`_rounded_point`) often answer "yes".
    Only where the rounding breaks a GPU cap does the MILP decide.
    """
    relaxed = _relaxation(gpus, constraints, bounds)
    if relaxed is None:
        return None
    rounded = _rounded_point(integrality, constraints, bounds, relaxed)
    if rounded is not None:
        return rounded
    return _solve(np.zeros(gpus.size), constraints, bounds, integrality)


def _rounded_point(
    integrality: np.ndarray,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    relaxed: np.ndarray,
) -> np.ndarray | None:
    """`relaxed` with each pool's replicas raised to the next whole number (flows and
    unserved demand kept, within their bounds), if that breaks no row or bound by more
    than the solver's own tolerance (`MIP_FEASIBILITY_TOLERANCE`); else None.

    Raising replicas keeps every load row; the GPU caps and maxReplicas can break, and
    the check catches them. A point the solver would accept is all a "yes" needs.
    """
    lower, upper = bounds
    whole = integrality > 0
    x = np.asarray(np.clip(relaxed, lower, upper), dtype=float)
    x[whole] = np.maximum(lower[whole], np.ceil(relaxed[whole] - POINT_TOLERANCE))
    if _within(constraints, bounds, x, MIP_FEASIBILITY_TOLERANCE):
        return x
    return None


def _within(
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    x: np.ndarray,
    tolerance: float,
) -> bool:
    """Does `x` meet every bound and row, each broken by at most `tolerance`?"""
    lower, upper = bounds
    if np.any(x < lower - tolerance) or np.any(x > upper + tolerance):
        return False
    rows = np.asarray(csc_array(constraints.A) @ x, dtype=float)
    return not (
        np.any(rows < constraints.lb - tolerance) or np.any(rows > constraints.ub + tolerance)
    )


POINT_TOLERANCE = 1e-9
"""How far a constructed point may break a row or bound (HiGHS itself accepts 1e-6)."""


def _constructed_point(
    problem: AllocationProblem,
    layout: _Layout,
    constraints: LinearConstraint,
    bounds: tuple[np.ndarray, np.ndarray],
    base: np.ndarray | None = None,
) -> np.ndarray | None:
    """A point within `constraints` and `bounds`, built without the solver; None where the
    one built breaks a bound or a row (a GPU cap, say).

    Every demand that must be served in full (its unserved bound 0) is routed as in
    `base` where `base` serves it (flows scaled to its demand), else on its own pool; the
    rest stays unserved; each pool gets the least replicas that carry what it is given
    (its lower bound at least).

    A level's "fully served?" question needs only a yes or no, and any point proves yes:
    where the tiers above the level fit, the level's own pools on top of the previous
    level's point often do, and the solver is asked only when they do not. The answer is
    the one the solver would give (it finds a point whenever one exists), so the ranking
    is unchanged; only the incumbent kept for numerical trouble may be this point instead
    of the solver's.
    """
    lower, upper = bounds
    x = lower.copy()
    pairs_of: dict[str, list[int]] = {}
    for k, (demand_name, _) in enumerate(layout.pairs):
        pairs_of.setdefault(demand_name, []).append(k)
    for j, demand in enumerate(problem.demands):
        rate = _rate(demand)
        if upper[layout.u(j)] > 0.0 or rate == 0.0:
            x[layout.u(j)] = rate  # may stay unserved (its upper bound is its demand)
            continue
        ks = pairs_of.get(demand.name, [])
        if base is not None and base[layout.u(j)] <= 0.0:
            routed = [max(float(base[layout.x(k)]), 0.0) for k in ks]
            if sum(routed) > 0.0:
                for k, rps in zip(ks, routed, strict=True):
                    x[layout.x(k)] = rps * rate / sum(routed)
                continue
        own = [k for k in ks if layout.pairs[k][1] == demand.name]
        if not own:
            return None  # no pool of its own to carry it
        x[layout.x(own[0])] = rate
    capacity = {(d.name, p): c for d in problem.demands for p, c in d.capacity_rps_by_pool.items()}
    load = np.zeros(len(layout.pool_names))
    pool_index = {name: i for i, name in enumerate(layout.pool_names)}
    for k, pair in enumerate(layout.pairs):
        load[pool_index[pair[1]]] += x[layout.x(k)] / capacity[pair]
    for i in range(len(layout.pool_names)):
        x[layout.n(i)] = max(lower[layout.n(i)], float(np.ceil(load[i] - POINT_TOLERANCE)))
    return x if _within(constraints, bounds, x, POINT_TOLERANCE) else None


def _allocation(
    problem: AllocationProblem,
    layout: _Layout,
    x: np.ndarray,
    status: str,
    noise_rps: float = 0.0,
) -> Allocation:
    """`noise_rps`: unserved demand up to this is the frozen levels' slack, reported as 0."""
    replicas = {name: int(round(x[layout.n(i)])) for i, name in enumerate(layout.pool_names)}
    flows = {pair: max(float(x[layout.x(k)]), 0.0) for k, pair in enumerate(layout.pairs)}
    unserved = {
        name: _clean(float(x[layout.u(j)]), noise_rps) for j, name in enumerate(layout.demand_names)
    }
    return Allocation(replicas, flows, unserved, status)


def _rate(demand: DemandSpec) -> float:
    return demand.rate_rps if demand.rate_rps >= NEGLIGIBLE_RATE_RPS else 0.0


def _clean(value: float, noise_rps: float = 0.0) -> float:
    return 0.0 if value < max(1e-6, 2.0 * noise_rps) else value


def _infeasible(problem: AllocationProblem, layout: _Layout) -> Allocation:
    """Even the minimum replicas break the budget: report it, plan minimums, serve nothing."""
    replicas = {
        p.name: problem.fixed_replicas_by_pool.get(p.name, p.min_replicas) for p in problem.pools
    }
    unserved = {d.name: max(d.rate_rps, 0.0) for d in problem.demands}
    return Allocation(replicas, {}, unserved, "infeasible")
