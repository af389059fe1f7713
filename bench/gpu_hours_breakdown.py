"""Where tierscale's GPU-hours go, next to the hindsight static fleet's (a benchmark reading).

    .venv/bin/python bench/gpu_hours_breakdown.py OUT [--all] [--jobs 2] [--json rows.json]

OUT is a generalisation run with tierscale's and static's results (`tierscale bench
--generate N --seed S --policies tierscale,static,oracle --out OUT`): its runs/*.json hold
tierscale's record of every decision, its scenarios/*.yaml the scenarios. Issue 11 asks
for never more GPU-hours than the static fleet at an equal or better attainment, and
where a target is missed, why; this splits tierscale's GPU-hours, scenario by scenario,
into five parts that add up to them:

- **need**: each tier's observed rate over one replica's true capacity, rounded up (at
  least the pool's minReplicas), at every decision: what a fleet that knew the engine and
  followed the observed rate without delay or margin would hold;
- **margins**: the planned rate (forecast: bursts, trend over the cold start, a backlog to
  drain) at the same true capacity, above `need`;
- **capacity model**: the planned rate at the planner's own capacity per replica (its
  model over the learned bias, as the decision record gives it) above the same rate at
  the true capacity: the model's pessimism (negative where it is optimistic);
- **held**: Ready replicas above that plan (scale-down stabilisation, breach floors, a
  tier spilling onto others, a held pool); negative where the Ready replicas lag it
  (cold starts);
- **loading**: the run's GPU-hours less those of its Ready replicas: replicas started and
  not yet Ready (and the error of reading Ready replicas once per decision).

The true capacity is `runner.capacity_of`, the probe on the scenario's true engine that
sizes `oracle` and `static`. Decisions are sampled every control interval (15 s), each
sample standing for the interval before it. Scenarios under a GPU budget are left out
unless `--all` (their planned rates are not what they get), and so is any scenario with
a tier no replica of the true engine serves at its target (no finite `need`).

Deterministic (the probes are seeded); scenarios fan out over `--jobs` processes. A
reading of results, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tierscale_sim import runner, scenario

PARTS = ("need", "margins", "capacity_model", "held", "loading")


@dataclass(frozen=True, slots=True)
class TierRecord:
    """One tier's decision record in a run (the fields this reading needs), in order."""

    t_s: Sequence[float]
    ready_replicas: Sequence[float | None]
    observed_rate_rps: Sequence[float | None]
    planned_rate_rps: Sequence[float | None]
    capacity_rps_per_replica: Sequence[float | None]
    """The planner's capacity of one replica of the tier's own pool (None: not planned)."""
    true_capacity_rps: float
    min_replicas: int
    gpus_per_replica: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    """GPU-hours in parts (`PARTS`), adding up to `gpu_hours`."""

    gpu_hours: float
    need: float
    margins: float
    capacity_model: float
    held: float
    loading: float

    def parts(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in PARTS}


def _replicas(rate_rps: float | None, capacity_rps: float | None, least: int) -> int | None:
    if rate_rps is None or capacity_rps is None or not capacity_rps > 0.0:
        return None
    return max(least, math.ceil(max(rate_rps, 0.0) / capacity_rps - 1e-9))


def breakdown(tiers: Sequence[TierRecord], gpu_hours: float) -> Breakdown:
    """Split a run's `gpu_hours` over its tiers' decision records (see the module doc).

    A step the decision did not make counts as no step: without a planned rate the
    planned rate's replicas are the need, without a planned capacity the plan is the
    planned rate at the true capacity, and without an observed rate the need is the plan
    at the true capacity (or the Ready replicas where there is none); what the Ready
    replicas hold beyond that counts as held.
    """
    need = margins = model = held = ready_h = 0.0
    for tier in tiers:
        previous_s = 0.0
        for i, t_s in enumerate(tier.t_s):
            hours = max(t_s - previous_s, 0.0) / 3600.0 * tier.gpus_per_replica
            previous_s = t_s
            ready = float(tier.ready_replicas[i] or 0.0)
            true = tier.true_capacity_rps
            observed = _replicas(tier.observed_rate_rps[i], true, tier.min_replicas)
            at_true = _replicas(tier.planned_rate_rps[i], true, tier.min_replicas)
            planned = _replicas(
                tier.planned_rate_rps[i], tier.capacity_rps_per_replica[i], tier.min_replicas
            )
            need_r = float(
                observed if observed is not None else at_true if at_true is not None else ready
            )
            at_true_r = need_r if at_true is None else float(at_true)
            plan_r = at_true_r if planned is None else float(planned)
            need += need_r * hours
            margins += (at_true_r - need_r) * hours
            model += (plan_r - at_true_r) * hours
            held += (ready - plan_r) * hours
            ready_h += ready * hours
    return Breakdown(gpu_hours, need, margins, model, held, gpu_hours - ready_h)


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    oracle_met: bool
    tierscale_met: bool
    static_met: bool
    tierscale_gpu_hours: float
    static_gpu_hours: float
    oracle_gpu_hours: float | None
    parts: dict[str, float]


def _tier_records(run: Mapping[str, Any], spec_path: Path) -> list[TierRecord] | None:
    """tierscale's run as tier records, with each tier's true capacity; None where a
    tier's true capacity is 0 (no replica of the engine serves it at its target)."""
    setup = runner.prepare(scenario.load_scenario(spec_path), spec_path)
    decisions = run["decisions"]
    out = []
    for i, tier in enumerate(setup.tiers):
        true = runner.capacity_of(setup, i)
        if not true > 0.0:
            return None
        rec = decisions["by_tier"][tier.key]
        out.append(
            TierRecord(
                t_s=decisions["t_s"],
                ready_replicas=rec["ready_replicas"],
                observed_rate_rps=rec["observed_rate_rps"],
                planned_rate_rps=rec["planned_rate_rps"],
                capacity_rps_per_replica=rec["capacity_rps_per_replica"],
                true_capacity_rps=true,
                min_replicas=tier.pool.min_replicas,
                gpus_per_replica=tier.pool.gpus_per_replica,
            )
        )
    return out


def _row(out: Path, entry: Mapping[str, Any]) -> Row | str:
    """One scenario's `Row`, or why it is left out."""
    name = entry["scenario"]
    policies = entry["policies"]
    runs = json.loads((out / "runs" / f"{name}.json").read_text())["runs"]
    run = next(r for r in runs if r["policy"] == "tierscale")
    records = _tier_records(run, out / "scenarios" / f"{name}.yaml")
    if records is None:
        return "a tier no replica of the true engine serves at its target"
    oracle = policies.get("oracle")
    return Row(
        scenario=name,
        oracle_met=bool(entry.get("oracle_met")),
        tierscale_met=bool(policies["tierscale"]["all_tiers_met"]),
        static_met=bool(policies["static"]["all_tiers_met"]),
        tierscale_gpu_hours=policies["tierscale"]["gpu_hours"],
        static_gpu_hours=policies["static"]["gpu_hours"],
        oracle_gpu_hours=None if oracle is None else oracle["gpu_hours"],
        parts=breakdown(records, policies["tierscale"]["gpu_hours"]).parts(),
    )


def rows(
    out: Path, *, include_budgets: bool = False, jobs: int = 1
) -> tuple[list[Row], list[tuple[str, str]]]:
    """Every scenario of generalisation run `out` read into a `Row` (in the report's
    order, over `jobs` processes), and the ones left out with the reason."""
    report = json.loads((out / "generalisation.json").read_text())
    todo: list[Mapping[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for entry in report["scenarios"]:
        policies = entry["policies"]
        if "tierscale" not in policies or "static" not in policies:
            skipped.append((entry["scenario"], "no tierscale or static result"))
        elif entry["tags"].get("budget_gpus") is not None and not include_budgets:
            skipped.append((entry["scenario"], f"GPU budget {entry['tags']['budget_gpus']}"))
        else:
            todo.append(entry)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_row, [out] * len(todo), todo))
    else:
        results = [_row(out, entry) for entry in todo]
    kept: list[Row] = []
    for entry, result in zip(todo, results, strict=True):
        if isinstance(result, Row):
            kept.append(result)
        else:
            skipped.append((entry["scenario"], result))
    return kept, skipped


def _met(flag: bool) -> str:
    return "met" if flag else "missed"


def table(kept: Sequence[Row]) -> list[str]:
    """A markdown table, one row per scenario and a total row."""
    head = "| scenario | tierscale | static | oracle | " + " | ".join(PARTS) + " |"
    lines = [head.replace("_", " "), "|---|---|---|---|" + "---:|" * len(PARTS)]
    for r in kept:
        oracle = "-" if r.oracle_gpu_hours is None else f"{r.oracle_gpu_hours:.2f}"
        lines.append(
            f"| {r.scenario} | {r.tierscale_gpu_hours:.2f} ({_met(r.tierscale_met)}) "
            f"| {r.static_gpu_hours:.2f} ({_met(r.static_met)}) | {oracle} | "
            + " | ".join(f"{r.parts[p]:.2f}" for p in PARTS)
            + " |"
        )
    for label, subset in (
        ("all", list(kept)),
        ("static cheaper, both met", [r for r in kept if _cheaper_static(r)]),
    ):
        if not subset:
            continue
        total = {p: sum(r.parts[p] for r in subset) for p in PARTS}
        ts = sum(r.tierscale_gpu_hours for r in subset)
        st = sum(r.static_gpu_hours for r in subset)
        lines.append(
            f"| **{label}** ({len(subset)}) | {ts:.2f} | {st:.2f} | | "
            + " | ".join(f"{total[p]:.2f} ({100.0 * total[p] / ts:.0f} %)" for p in PARTS)
            + " |"
        )
    return lines


def _cheaper_static(r: Row) -> bool:
    return r.tierscale_met and r.static_met and r.static_gpu_hours < r.tierscale_gpu_hours


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a `tierscale bench --generate` output directory")
    parser.add_argument("--all", action="store_true", help="include scenarios under a budget")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    kept, skipped = rows(args.out, include_budgets=args.all, jobs=args.jobs)
    print("\n".join(table(kept)))
    for name, why in skipped:
        print(f"left out: {name} ({why})")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in kept], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
