"""One policy in two generalisation runs of the same scenarios: what a change did (A/B).

Every "N -> M met, GPU-hours X -> Y, K better and L worse by more than 0.5 points of the
worst tier" in docs/planner.md and docs/bench/NOTES.md compares two
`tierscale bench --generate N --seed S --policies tierscale --out DIR` runs, one before
and one after a change, with this. A scenario is better (worse) when its worst tier's
margin over its target rose (fell) by more than `--points`. Run:

    .venv/bin/python bench/generalisation_ab.py BEFORE/generalisation.json \\
        AFTER/generalisation.json [--policy tierscale] [--points 0.5]

A reading of results, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Change:
    scenario: str
    margin_before: float
    """Worst tier's attainment minus its target, in points."""
    margin_after: float
    gpu_hours_before: float
    gpu_hours_after: float


def _by_scenario(report: Mapping[str, Any], policy: str) -> dict[str, Mapping[str, Any]]:
    return {s["scenario"]: s["policies"][policy] for s in report["scenarios"]}


def _margin(result: Mapping[str, Any]) -> float:
    worst = result["worst_tier"]
    return 100.0 * (float(worst["attainment"]) - float(worst["target"]))


def changes(
    before: Mapping[str, Any], after: Mapping[str, Any], policy: str = "tierscale"
) -> list[Change]:
    """Every scenario in both runs, in scenario order."""
    a, b = _by_scenario(before, policy), _by_scenario(after, policy)
    return [
        Change(k, _margin(a[k]), _margin(b[k]), a[k]["gpu_hours"], b[k]["gpu_hours"])
        for k in sorted(a)
        if k in b
    ]


def summary_lines(
    before: Mapping[str, Any], after: Mapping[str, Any], policy: str, points: float
) -> list[str]:
    a, b = _by_scenario(before, policy), _by_scenario(after, policy)
    met_a = sum(bool(r["all_tiers_met"]) for r in a.values())
    met_b = sum(bool(r["all_tiers_met"]) for r in b.values())
    gpu_a = sum(r["gpu_hours"] for r in a.values())
    gpu_b = sum(r["gpu_hours"] for r in b.values())
    lines = [
        f"every tier met: {met_a} -> {met_b} of {len(b)}; GPU-hours {gpu_a:.1f} -> {gpu_b:.1f}"
        f" ({100.0 * (gpu_b / gpu_a - 1.0):+.1f} %)"
    ]
    better = worse = 0
    for c in changes(before, after, policy):
        flag = ""
        if c.margin_after > c.margin_before + points:
            flag, better = " better", better + 1
        elif c.margin_after < c.margin_before - points:
            flag, worse = " worse", worse + 1
        moved = abs(c.gpu_hours_after - c.gpu_hours_before) > 0.005
        if moved or abs(c.margin_after - c.margin_before) > 0.01:
            lines.append(
                f"- {c.scenario}: worst tier {c.margin_before:+.1f} -> {c.margin_after:+.1f}"
                f" points, GPU-hours {c.gpu_hours_before:.2f} -> {c.gpu_hours_after:.2f}{flag}"
            )
    lines.append(f"{better} better, {worse} worse by more than {points} points")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="BEFORE/generalisation.json")
    parser.add_argument("after", type=Path, help="AFTER/generalisation.json")
    parser.add_argument("--policy", default="tierscale")
    parser.add_argument("--points", type=float, default=0.5)
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    print("\n".join(summary_lines(before, after, args.policy, args.points)))


if __name__ == "__main__":
    main()
