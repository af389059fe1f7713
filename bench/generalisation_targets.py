"""Issue 11's targets (item 7), read from one generalisation run's generalisation.json.

`tierscale bench --generate N --seed S --out OUT` writes OUT/generalisation.json with
every policy's result per scenario. This prints what docs/bench/NOTES.md quotes against
the targets: per policy, the share of scenarios with every tier met (overall and where
the oracle met them) and GPU-hours against the oracle; the scenarios the oracle meets and
tierscale misses; where the hindsight static fleet was cheaper at an equal or better
worst-tier margin; tierscale's GPU-hours against the tuned HPA/KEDA where both met every
tier; and the tiers where tierscale is more than 0.5 points below or above `isolated`.
Run:

    .venv/bin/python bench/generalisation_targets.py OUT/generalisation.json

A reading of results, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TUNED = ("hpa-tuned", "keda-tuned")
TIER_POINTS = 0.5
"""Attainment points (percent) a tier must differ by to count as below or above."""


@dataclass(frozen=True, slots=True)
class Targets:
    oracle_met_misses: list[tuple[str, str, float, float]]
    """(scenario, worst tier, attainment, target) where the oracle met every tier."""
    static_cheaper: list[tuple[str, float]]
    """(scenario, tierscale GPU-h / static GPU-h) where static was cheaper at >= margin."""
    vs_tuned: list[float]
    """tierscale GPU-h / tuned baseline GPU-h, one per (scenario, baseline) both met."""
    below_isolated: list[tuple[float, str, str]]
    """(points, scenario, tier) for tiers more than TIER_POINTS below isolated."""
    above_isolated: int
    tiers: int


def _margin(result: Mapping[str, Any]) -> float:
    worst = result["worst_tier"]
    return float(worst["attainment"]) - float(worst["target"])


def targets(report: Mapping[str, Any], policy: str = "tierscale") -> Targets:
    """What the targets compare, for `policy` (needs static, the tuned baselines and
    isolated in the run for their rows; absent ones are skipped)."""
    misses, cheaper, ratios, below = [], [], [], []
    above = tiers = 0
    for s in report["scenarios"]:
        results = s["policies"]
        mine = results[policy]
        if s["oracle_met"] and not mine["all_tiers_met"]:
            worst = mine["worst_tier"]
            misses.append((s["scenario"], worst["tier"], worst["attainment"], worst["target"]))
        static = results.get("static")
        if (
            static is not None
            and static["gpu_hours"] < mine["gpu_hours"]
            and _margin(static) >= _margin(mine) - 1e-12
        ):
            cheaper.append((s["scenario"], mine["gpu_hours"] / static["gpu_hours"]))
        for name in TUNED:
            tuned = results.get(name)
            if mine["all_tiers_met"] and tuned is not None and tuned["all_tiers_met"]:
                ratios.append(mine["gpu_hours"] / tuned["gpu_hours"])
        isolated = results.get("isolated", {}).get("attainment_by_tier", {})
        for tier, attained in mine["attainment_by_tier"].items():
            tiers += 1
            if tier not in isolated:
                continue
            points = 100.0 * (attained - isolated[tier])
            if points < -TIER_POINTS:
                below.append((points, s["scenario"], tier))
            elif points > TIER_POINTS:
                above += 1
    return Targets(misses, cheaper, ratios, sorted(below), above, tiers)


def report_lines(report: Mapping[str, Any], policy: str = "tierscale") -> list[str]:
    """The summary table and the target readings as markdown lines."""
    lines = [
        "| policy | every tier met | where the oracle met | GPU-h vs oracle median | p90 | worst |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in report["summary"].items():
        vs = s["gpu_hours_vs_oracle"] or {}
        where = s["met_where_oracle_met_frac"]
        lines.append(
            f"| {name} | {100 * s['all_tiers_met_frac']:.0f}% |"
            f" {'-' if where is None else f'{100 * where:.0f}%'} |"
            f" {vs.get('median', float('nan')):.2f}x | {vs.get('p90', float('nan')):.2f}x |"
            f" {vs.get('max', float('nan')):.2f}x |"
        )
    t = targets(report, policy)
    lines.append("")
    lines.append(f"Oracle met every tier, {policy} did not ({len(t.oracle_met_misses)}):")
    lines += [
        f"- {n}: {k} {100 * a:.1f} % of {100 * g:.0f} %" for n, k, a, g in t.oracle_met_misses
    ]
    ratios = ", ".join(f"{n} {r:.2f}x" for n, r in t.static_cheaper)
    lines.append(f"Static cheaper at an equal or better worst-tier margin: {len(t.static_cheaper)}")
    if ratios:
        lines.append(f"  ({ratios})")
    if t.vs_tuned:
        lines.append(
            f"Against tuned HPA/KEDA where both met every tier: median"
            f" {statistics.median(t.vs_tuned):.2f}x their GPU-hours ({len(t.vs_tuned)} pairs)"
        )
    lines.append(
        f"Against isolated, more than {TIER_POINTS} points below on {len(t.below_isolated)}"
        f" of {t.tiers} tiers, above on {t.above_isolated}"
    )
    lines += [f"- {n} {k}: {p:+.1f} points" for p, n, k in t.below_isolated[:5]]
    summed = {
        name: sum(s["policies"][name]["gpu_hours"] for s in report["scenarios"])
        for name in report["summary"]
    }
    lines.append("Summed GPU-hours: " + ", ".join(f"{k} {v:.1f}" for k, v in summed.items()))
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="OUT/generalisation.json")
    parser.add_argument("--policy", default="tierscale")
    args = parser.parse_args(argv)
    print("\n".join(report_lines(json.loads(args.report.read_text()), args.policy)))


if __name__ == "__main__":
    main()
