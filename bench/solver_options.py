"""Benchmark: the planner's MILPs solved under HiGHS option sets, side by side.

Run: `.venv/bin/python -m bench.solver_options [--tiers 16,18,20,22,24] [--rounds 2]`.
Makes the plans of `bench/plan_latency.py` (its `measure`, 40 per tier count), keeps
every MILP they solve (`allocation._solve` wrapped), then solves each of them again
under every option set below, in turn, `--rounds` times, timing HiGHS on the process's
CPU clock. Prints, per option set, the solver time in all, per MILP at the median, p99
and worst, and how many MILPs end with another status or optimum than under the
planner's options (`allocation._MIP_OPTIONS`): an option set that changes an optimum is
not a speed-up. Equal optima may still be different points (which replicas); that is a
decision change to A/B in the simulator, not something this measures. Numbers are
measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import LinearConstraint

from bench.plan_latency import measure
from tierscale.policy import allocation
from tierscale_predictor import latency, profiles

Options = tuple[tuple[str, bool | int], ...]

OPTION_SETS: dict[str, Options] = {
    "planner (allocation._MIP_OPTIONS)": allocation._MIP_OPTIONS,
    "feasibility jump off only (before 2026-12-04)": (
        ("mip_heuristic_run_feasibility_jump", False),
    ),
    "HiGHS's MIP defaults (presolve off, as always)": (
        ("mip_heuristic_run_feasibility_jump", True),
    ),
}


@dataclass(frozen=True, slots=True)
class Milp:
    cost: np.ndarray
    constraints: LinearConstraint
    bounds: tuple[np.ndarray, np.ndarray]
    integrality: np.ndarray


def collect(tier_counts: list[int], repeats: int) -> list[Milp]:
    """Every MILP the plans of `measure` solve, in order."""
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    milps: list[Milp] = []
    original: Callable[..., np.ndarray | None] = allocation._solve

    def keep(
        cost: np.ndarray,
        constraints: LinearConstraint,
        bounds: tuple[np.ndarray, np.ndarray],
        integrality: np.ndarray,
        mip_options: Options = allocation._MIP_OPTIONS,
    ) -> np.ndarray | None:
        if np.any(integrality):
            milps.append(Milp(cost.copy(), constraints, bounds, integrality.copy()))
        return original(cost, constraints, bounds, integrality, mip_options)

    allocation._solve = keep
    try:
        for count in tier_counts:
            measure(count, repeats, model, time.process_time)
    finally:
        allocation._solve = original
    return milps


def solve_all(milps: list[Milp], options: Options) -> tuple[list[float], list[float | None]]:
    """Each MILP's solver time (ms, process clock) and optimum (None: no optimum)."""
    times_ms: list[float] = []
    optima: list[float | None] = []
    for milp in milps:
        start = time.process_time()
        x = allocation._solve(milp.cost, milp.constraints, milp.bounds, milp.integrality, options)
        times_ms.append((time.process_time() - start) * 1000.0)
        optima.append(None if x is None else float(milp.cost @ x))
    return times_ms, optima


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > 1e-6 * max(1.0, abs(a))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiers", default="16,18,20,22,24")
    parser.add_argument("--repeats", type=int, default=40, help="plans per tier count")
    parser.add_argument("--rounds", type=int, default=2, help="solves of each MILP per set")
    args = parser.parse_args()
    tier_counts = [int(c) for c in args.tiers.split(",")]
    print(f"making {args.repeats} plans at each of {tier_counts} tiers ...", flush=True)
    milps = collect(tier_counts, args.repeats)
    print(f"{len(milps)} MILPs; solving each {args.rounds}x under each option set", flush=True)
    times: dict[str, list[float]] = {name: [] for name in OPTION_SETS}
    optima: dict[str, list[float | None]] = {}
    for round_no in range(args.rounds):
        for name, options in OPTION_SETS.items():  # interleaved: drifts hit every set
            took, found = solve_all(milps, options)
            times[name].extend(took)
            optima.setdefault(name, found)
            print(f"  round {round_no + 1}: {name} {sum(took):.0f} ms", flush=True)
    reference = optima[next(iter(OPTION_SETS))]
    print(
        "| HiGHS options | solver time per round | per MILP p50 / p99 / worst "
        "| other status or optimum |"
    )
    print("|---|---:|---|---:|")
    for name, took in times.items():
        other = sum(_differs(a, b) for a, b in zip(reference, optima[name], strict=True))
        print(
            f"| {name} | {sum(took) / args.rounds:.0f} ms "
            f"| {statistics.median(took):.1f} / {float(np.quantile(took, 0.99)):.1f} / "
            f"{max(took):.1f} ms | {other} of {len(milps)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
