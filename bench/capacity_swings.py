"""How often a policy scaled up because its capacity estimate fell, not because demand rose.

Reads the per-tick decisions a `tierscale bench` run records (OUT/results.json, or every
OUT/runs/*.json of a `--generate` run) and counts, per tier, the scale-ups (desired
replicas up from the tick before) where the planned demand rose by at most
`--demand-rise` (5 %) while the planned capacity per replica fell by more than
`--capacity-drop` (20 %), with no observed SLO breach. Scale-up acts at once and
scale-down waits for its window, so each such scale-up is a replica a noisy capacity
estimate bought. Also prints the tick-to-tick capacity ratio (p90 and max) of the worst
tiers. Run:

    .venv/bin/python bench/capacity_swings.py OUT_DIR [OUT_DIR ...] [--top 15]

A diagnostic, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BREACH_REASON = "SLOBreach"


@dataclass(frozen=True, slots=True)
class TierSwings:
    run: str
    tier: str
    scale_ups: int
    capacity_driven: int
    swing_p90: float
    swing_max: float


def tier_swings(
    run: str,
    tier: str,
    columns: dict[str, list[Any]],
    demand_rise: float = 0.05,
    capacity_drop: float = 0.2,
) -> TierSwings:
    """Scale-ups and capacity-driven scale-ups of one tier's recorded decisions."""
    desired = columns["desired_replicas"]
    demand = columns["planned_rate_rps"]
    cap = columns["capacity_rps_per_replica"]
    reasons = columns["reason"]
    ups = driven = 0
    ratios: list[float] = []
    for i in range(1, len(desired)):
        if desired[i] is None or desired[i - 1] is None:
            continue
        both_caps = bool(cap[i]) and bool(cap[i - 1])
        if both_caps:
            ratios.append(max(cap[i], cap[i - 1]) / min(cap[i], cap[i - 1]))
        if desired[i] <= desired[i - 1]:
            continue
        ups += 1
        demand_flat = (
            demand[i] is not None
            and demand[i - 1] is not None
            and demand[i] <= (1.0 + demand_rise) * demand[i - 1]
        )
        fell = both_caps and cap[i] < (1.0 - capacity_drop) * cap[i - 1]
        if demand_flat and fell and reasons[i] != BREACH_REASON:
            driven += 1
    ratios.sort()
    p90 = ratios[min(len(ratios) - 1, math.floor(0.9 * len(ratios)))] if ratios else 1.0
    return TierSwings(run, tier, ups, driven, p90, ratios[-1] if ratios else 1.0)


def _result_files(out_dir: Path) -> list[Path]:
    runs = sorted((out_dir / "runs").glob("*.json"))
    return runs or [out_dir / "results.json"]


def swings(out_dirs: Sequence[Path], policy: str = "tierscale") -> Iterator[TierSwings]:
    """Every tier of every recorded run of `policy` under the given bench outputs."""
    for out_dir in out_dirs:
        for path in _result_files(out_dir):
            for run in json.loads(path.read_text())["runs"]:
                decisions = run.get("decisions")
                if run.get("policy") != policy or not decisions:
                    continue
                name = f"{path.stem if path.parent.name == 'runs' else out_dir.name}"
                for tier, columns in decisions["by_tier"].items():
                    yield tier_swings(name, tier, columns)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dirs", type=Path, nargs="+", help="tierscale bench --out dirs")
    parser.add_argument("--policy", default="tierscale")
    parser.add_argument("--top", type=int, default=15, help="tiers listed (most driven first)")
    args = parser.parse_args(argv)
    rows = sorted(
        swings(args.out_dirs, args.policy),
        key=lambda r: (r.capacity_driven, r.scale_ups),
        reverse=True,
    )
    print("| run | tier | scale-ups | capacity-driven | capacity swing p90 | max |")
    print("|---|---|---|---|---|---|")
    for r in rows[: args.top]:
        print(
            f"| {r.run} | {r.tier} | {r.scale_ups} | {r.capacity_driven} |"
            f" {r.swing_p90:.2f}x | {r.swing_max:.1f}x |"
        )
    total = sum(r.scale_ups for r in rows)
    driven = sum(r.capacity_driven for r in rows)
    print(f"\n{driven} of {total} scale-ups were capacity-driven ({len(rows)} tiers)")


if __name__ == "__main__":
    main()
