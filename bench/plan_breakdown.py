"""Benchmark: where one `planner.plan()` call spends its time, step by step.

Run: `.venv/bin/python -m bench.plan_breakdown [--repeats N] [--tiers 20]`. The same plans
as `bench/plan_latency.py` (its `measure`), timed on the process's CPU clock with each
planner step and every HiGHS solve wrapped; the solves are told apart by what asks for
them (the "everything served" attempt, a priority level's "fully served?" check, the LP
relaxation that may prove either infeasible first, the optimisation of a level's unserved
demand, the final minimum-GPU solve, the flows and routing LPs). Steps nest (the solves
run inside the target step), so the rows do not add up to the total. Numbers are measured
here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.plan_latency import measure
from tierscale.policy import allocation, explain, planner
from tierscale_predictor import latency, profiles

STEPS = {
    "observe (lengths, breaches, forecast)": (planner, "observe"),
    "capacities (the predictor)": (planner, "capacities"),
    "margins last: lean + ranked full problem": (planner, "margins_last"),
    "explain (messages, engine advice)": (explain, "explain"),
    "route (today's flows)": (planner, "route_now"),
}
"""Row label -> (module, function) wrapped where the planner looks it up."""


def solve_kind(caller: str, cost: Any, pools: int) -> str:
    """What a HiGHS solve is for, from the function that asks and its objective."""
    if caller == "_rank":
        if not cost.any():
            return "solve: a level's fully-served check"
        if cost[:pools].any():
            return "solve: final minimum GPUs"
        return "solve: a level's unserved optimum"
    return {
        "_relaxation": "solve: LP relaxation (infeasible proof or rounded point)",
        "_servable": "solve: a level's fully-served check",
        "_serve_all": "solve: everything served",
        "_kept": "solve: equal optima, the present replicas kept (LP)",
        "_settle_flows": "solve: flows (LP)",
        "route": "solve: routing (LP)",
    }.get(caller, f"solve: {caller}")


@contextmanager
def wrapped(totals: defaultdict[str, float], counts: Counter[str]) -> Iterator[None]:
    """Accumulate process time per step and per kind of solve while inside."""
    saved: list[tuple[Any, str, Callable[..., Any]]] = []

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] += time.process_time() - start
                counts[label] += 1

        return run

    for label, (module, name) in STEPS.items():
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, timed(label, getattr(module, name)))
    solve = allocation._solve

    def classified(cost: Any, constraints: Any, bounds: Any, integrality: Any) -> Any:
        label = solve_kind(sys._getframe(1).f_code.co_name, cost, int(integrality.sum()))
        return timed(label, solve)(cost, constraints, bounds, integrality)

    saved.append((allocation, "_solve", solve))
    allocation._solve = classified
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--tiers", default="20")
    args = parser.parse_args()
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    for count in (int(c) for c in args.tiers.split(",")):
        totals: defaultdict[str, float] = defaultdict(float)
        counts: Counter[str] = Counter()
        with wrapped(totals, counts):
            served, limited = measure(count, args.repeats, model, time.process_time)
        total_ms = sum(served) + sum(limited)
        print(
            f"{count} tiers, {len(served) + len(limited)} plans ({len(limited)} budget-limited):"
            f" {total_ms:.0f} ms of process time"
        )
        solves_ms = sum(v for k, v in totals.items() if k.startswith("solve:")) * 1000.0
        print(f"  {'all HiGHS solves':40s} {solves_ms:8.0f} ms  ({solves_ms / total_ms:.0%})")
        for label, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"  {label:40s} {seconds * 1000.0:8.0f} ms  {counts[label]:5d} calls")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
