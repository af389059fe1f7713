"""The generalisation benchmark: every policy on N random scenarios, and what held.

Per policy it reports the share of scenarios in which every tier met its attainment
target, the same share among the scenarios where the oracle itself met every tier (a
scenario the oracle cannot serve within its targets says nothing about a policy), and
the distribution of GPU-hours relative to the oracle of the same scenario (median, 90th
percentile, worst). Every scenario is written next to the results as a scenario file, so
any row can be rerun with `tierscale bench --scenario`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from tierscale_sim import bench, executors, runner  # noqa: E402
from tierscale_sim.executors import Outcome  # noqa: E402
from tierscale_sim.generate import Generated  # noqa: E402
from tierscale_sim.runner import PolicyRun, Setup  # noqa: E402
from tierscale_sim.scenario import ScenarioError, load_scenario  # noqa: E402


@dataclass(frozen=True, slots=True)
class PolicyStats:
    policy: str
    scenarios: int
    all_met_frac: float
    """Share of scenarios in which every tier met its target."""
    met_where_oracle_met_frac: float | None
    """The same share among the scenarios where the oracle met every tier."""
    vs_oracle: Mapping[str, float] | None
    """GPU-hours / the oracle's: min, median, p90, max over scenarios."""


@dataclass(frozen=True, slots=True)
class GeneralisationResult:
    seed: int
    count: int
    policies: tuple[str, ...]
    scenarios: tuple[Generated, ...]
    runs_by_scenario: Mapping[str, Mapping[str, Outcome]]
    """Scenario -> policy -> its run, or how it failed."""
    stats: Mapping[str, PolicyStats]
    stats_by_subset: Mapping[str, Mapping[str, PolicyStats]]
    """Subset label (e.g. `mismatch`, `arrival flash_crowd`) -> the same per policy."""
    oracle_met_frac: float | None
    wall_s: float
    executor: str
    jobs: int


def stored(generated: Sequence[Generated], folder: Path) -> list[Generated]:
    """The same scenarios as an earlier run wrote them (its `scenarios/` folder).

    The generator sizes each scenario's demand and maxReplicas with the latency
    predictor, so a predictor change also changes the scenarios drawn from a seed (a TTFT
    change drew 4.5 % more requests on seed 7): an A/B of a predictor change must run
    the baseline's files. The draws (tags, for the report's rows) stay the generator's."""
    out = []
    for g in generated:
        path = folder / f"{g.spec.name}.yaml"
        if not path.exists():
            raise ScenarioError(
                f"--scenarios-from {folder}: no {path.name}; it must be the scenarios/ folder"
                " of an earlier run with the same --generate and --seed"
            )
        out.append(replace(g, spec=load_scenario(path)))
    return out


def write_scenarios(generated: Sequence[Generated], out_dir: Path) -> list[Setup]:
    """Each scenario as a file under out_dir/scenarios (rerunnable), and its Setup."""
    folder = out_dir / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    setups: list[Setup] = []
    for g in generated:
        path = folder / f"{g.spec.name}.yaml"
        data = g.spec.model_dump(mode="json", exclude_defaults=True, by_alias=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        setups.append(runner.prepare(g.spec, path))
    return setups


def run(
    generated: Sequence[Generated],
    setups: Sequence[Setup],
    policies: Sequence[str],
    seeds: Sequence[int],
    *,
    seed: int,
    executor: str,
    jobs: int,
    wall_s_fn: Any,
    progress: executors.ProgressFn | None = None,
    ray_address: str | None = None,
) -> GeneralisationResult:
    """Run every policy on every scenario (and seed); `wall_s_fn` reads a clock."""
    started = wall_s_fn()
    tasks = [
        executors.Task(i, name, s, 1.0, keep_going=True)
        for i in range(len(setups))
        for s in seeds
        for name in policies
    ]
    runs = executors.run_tasks(setups, tasks, executor, jobs, progress, ray_address)
    by_scenario: dict[str, dict[str, Outcome]] = {}
    for task, r in zip(tasks, runs, strict=True):
        name = setups[task.setup].spec.name
        key = name if len(seeds) == 1 else f"{name}@{task.seed}"
        by_scenario.setdefault(key, {})[task.policy] = r
    stats, oracle_met = summarize(by_scenario, policies)
    tags = {g.spec.name: g.tags for g in generated}
    subsets: dict[str, dict[str, PolicyStats]] = {}
    for label, keep in _subsets(tags).items():
        chosen = {k: v for k, v in by_scenario.items() if keep(k.split("@")[0])}
        if chosen:
            subsets[label] = summarize(chosen, policies)[0]
    return GeneralisationResult(
        seed=seed,
        count=len(generated),
        policies=tuple(policies),
        scenarios=tuple(generated),
        runs_by_scenario=by_scenario,
        stats=stats,
        stats_by_subset=subsets,
        oracle_met_frac=oracle_met,
        wall_s=wall_s_fn() - started,
        executor=executor,
        jobs=jobs,
    )


def _subsets(tags: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Scenario kinds worth a row of their own: with and without a model mismatch or a
    budget, and each arrival process."""
    out: dict[str, Any] = {
        "model mismatch": lambda n: bool(tags[n].get("mismatch")),
        "no mismatch": lambda n: not tags[n].get("mismatch"),
        "GPU budget": lambda n: tags[n].get("budget_gpus") is not None,
    }
    for arrival in sorted({str(t.get("arrival")) for t in tags.values()}):
        out[f"arrivals: {arrival}"] = lambda n, a=arrival: str(tags[n].get("arrival")) == a
    return out


def _ok(outcome: Outcome | None) -> PolicyRun | None:
    return outcome if isinstance(outcome, PolicyRun) else None


def _vs_oracle(runs: Mapping[str, Outcome], policy: str) -> float | None:
    mine, oracle = _ok(runs.get(policy)), _ok(runs.get("oracle"))
    if mine is None or oracle is None or oracle.score.gpu_hours <= 0:
        return None
    return mine.score.gpu_hours / oracle.score.gpu_hours


def summarize(
    runs_by_scenario: Mapping[str, Mapping[str, Outcome]], policies: Sequence[str]
) -> tuple[dict[str, PolicyStats], float | None]:
    """Per policy over the scenarios (a run that failed counts as not met)."""
    oracle_met = {
        name: (o := _ok(runs.get("oracle"))) is not None and o.score.all_tiers_met
        for name, runs in runs_by_scenario.items()
        if "oracle" in runs
    }
    out: dict[str, PolicyStats] = {}
    for policy in policies:
        mine = {n: r[policy] for n, r in runs_by_scenario.items() if policy in r}
        if not mine:
            continue
        met = {n: (r := _ok(o)) is not None and r.score.all_tiers_met for n, o in mine.items()}
        where = [met[n] for n, ok in oracle_met.items() if ok and n in met]
        ratios = [
            ratio for n in mine if (ratio := _vs_oracle(runs_by_scenario[n], policy)) is not None
        ]
        out[policy] = PolicyStats(
            policy=policy,
            scenarios=len(mine),
            all_met_frac=float(np.mean(list(met.values()))),
            met_where_oracle_met_frac=float(np.mean(where)) if where else None,
            vs_oracle=_spread(ratios) if ratios else None,
        )
    frac = float(np.mean(list(oracle_met.values()))) if oracle_met else None
    return out, frac


def _spread(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "min": float(arr.min()),
        "median": float(np.median(arr)),
        "p90": float(np.percentile(arr, 90)),
        "max": float(arr.max()),
    }


# ------------------------------------------------------------------ outputs


def to_json(result: GeneralisationResult) -> dict[str, Any]:
    tags = {g.spec.name: g for g in result.scenarios}
    rows: list[dict[str, Any]] = []
    for key, runs in result.runs_by_scenario.items():
        g = tags[key.split("@")[0]]
        oracle = _ok(runs.get("oracle"))
        rows.append(
            {
                "scenario": key,
                "description": g.spec.description,
                "tags": dict(g.tags),
                "oracle_met": None if oracle is None else oracle.score.all_tiers_met,
                "policies": {p: _run_row(r, oracle) for p, r in runs.items()},
            }
        )
    return {
        "seed": result.seed,
        "count": result.count,
        "policies": list(result.policies),
        "executor": result.executor,
        "jobs": result.jobs,
        "wall_s": result.wall_s,
        "oracle_met_frac": result.oracle_met_frac,
        "summary": {
            p: {
                "scenarios": s.scenarios,
                "all_tiers_met_frac": s.all_met_frac,
                "met_where_oracle_met_frac": s.met_where_oracle_met_frac,
                "gpu_hours_vs_oracle": s.vs_oracle,
            }
            for p, s in result.stats.items()
        },
        "by_subset": {
            label: {
                p: {
                    "scenarios": s.scenarios,
                    "all_tiers_met_frac": s.all_met_frac,
                    "gpu_hours_vs_oracle": s.vs_oracle,
                }
                for p, s in stats.items()
            }
            for label, stats in result.stats_by_subset.items()
        },
        "scenarios": rows,
    }


def _run_row(r: Outcome, oracle: PolicyRun | None) -> dict[str, Any]:
    if isinstance(r, executors.Failed):
        return {"all_tiers_met": False, "error": r.error}
    s = r.score
    worst = min(s.by_tier.values(), key=lambda t: t.attainment_frac - t.target_frac)
    return {
        "all_tiers_met": s.all_tiers_met,
        "gpu_hours": s.gpu_hours,
        "gpu_hours_vs_oracle": (
            s.gpu_hours / oracle.score.gpu_hours if oracle and oracle.score.gpu_hours else None
        ),
        "attainment_by_tier": {k: t.attainment_frac for k, t in s.by_tier.items()},
        "worst_tier": {
            "tier": worst.tier_key,
            "attainment": worst.attainment_frac,
            "target": worst.target_frac,
        },
        "scale_events": s.scale_ups + s.scale_downs,
        "detail": r.detail,
    }


def _ratio(stats: PolicyStats, key: str) -> str:
    return "-" if stats.vs_oracle is None else f"{stats.vs_oracle[key]:.2f}x"


def markdown(result: GeneralisationResult, command: str, plots: Sequence[Path]) -> str:
    lines = [
        f"# Generalisation: {result.count} random scenarios (generator seed {result.seed})",
        "",
        f"`{command}`",
        "",
        f"{len(result.runs_by_scenario)} scenario runs x {len(result.policies)} policies in"
        f" {result.wall_s / 60:.1f} min ({result.executor}, {result.jobs} jobs). The oracle met"
        f" every tier in {_pct(result.oracle_met_frac)} of the scenarios.",
        "",
        "| policy | every tier met | ... where the oracle met every tier |"
        " GPU-h vs oracle: median | p90 | worst | best |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result.policies:
        s = result.stats.get(p)
        if s is None:
            continue
        lines.append(
            f"| {p} | {_pct(s.all_met_frac)} | {_pct(s.met_where_oracle_met_frac)} |"
            f" {_ratio(s, 'median')} | {_ratio(s, 'p90')} | {_ratio(s, 'max')} |"
            f" {_ratio(s, 'min')} |"
        )
    lines += ["", "By kind of scenario (every tier met / median GPU-h vs oracle):", ""]
    lines += ["| scenarios | n | " + " | ".join(result.policies) + " |"]
    lines += ["|" + "---|" * (2 + len(result.policies))]
    for label, stats in result.stats_by_subset.items():
        n = max((s.scenarios for s in stats.values()), default=0)
        cells = [
            f"{100 * stats[p].all_met_frac:.0f}% / {_ratio(stats[p], 'median')}"
            if p in stats
            else ""
            for p in result.policies
        ]
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Per scenario (met = every tier met its target; ratio = GPU-h / oracle's):", ""]
    head = "| scenario | what | oracle met | " + " | ".join(result.policies) + " |"
    lines += [head, "|" + "---|" * (3 + len(result.policies))]
    tags = {g.spec.name: g for g in result.scenarios}
    for key, runs in result.runs_by_scenario.items():
        g = tags[key.split("@")[0]]
        oracle = _ok(runs.get("oracle"))
        cells = []
        for p in result.policies:
            r = runs.get(p)
            if r is None:
                cells.append("")
                continue
            if isinstance(r, executors.Failed):
                cells.append("error")
                continue
            mark = "met" if r.score.all_tiers_met else "miss"
            ratio = _vs_oracle(runs, p)
            cells.append(mark + ("" if ratio is None else f" {ratio:.2f}x"))
        ok = "-" if oracle is None else ("yes" if oracle.score.all_tiers_met else "no")
        lines.append(f"| {key} | {g.spec.description} | {ok} | " + " | ".join(cells) + " |")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def write_plots(result: GeneralisationResult, out_dir: Path) -> list[Path]:
    names = [p for p in result.policies if p in result.stats]
    fig, (met_ax, ratio_ax) = plt.subplots(1, 2, figsize=(12, 3.8))
    x = np.arange(len(names))
    met = [100 * result.stats[p].all_met_frac for p in names]
    where = [100 * (result.stats[p].met_where_oracle_met_frac or 0.0) for p in names]
    met_ax.bar(x - 0.2, met, width=0.4, label="all scenarios")
    met_ax.bar(x + 0.2, where, width=0.4, label="where the oracle met every tier")
    met_ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
    met_ax.set_ylabel("scenarios with every tier met (%)")
    met_ax.set_ylim(0, 100)
    met_ax.legend(fontsize=7)
    data = [
        [
            ratio
            for runs in result.runs_by_scenario.values()
            if (ratio := _vs_oracle(runs, p)) is not None
        ]
        for p in names
    ]
    ratio_ax.boxplot(data, whis=(0, 100))
    ratio_ax.set_xticks(np.arange(1, len(names) + 1), names, rotation=40, ha="right", fontsize=8)
    ratio_ax.set_yscale("log")
    ratio_ax.axhline(1.0, color="k", lw=0.6, ls=":")
    ratio_ax.set_ylabel("GPU-hours / oracle (whiskers: min, max)")
    fig.suptitle(f"{result.count} random scenarios, generator seed {result.seed}")
    fig.tight_layout()
    path = out_dir / "generalisation.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_all(result: GeneralisationResult, out_dir: Path, command: str) -> list[Path]:
    """generalisation.json/.md and plots, plus each scenario's results.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "generalisation.json").write_text(json.dumps(to_json(result), indent=1) + "\n")
    plots = write_plots(result, out_dir)
    (out_dir / "generalisation.md").write_text(markdown(result, command, plots))
    per = out_dir / "runs"
    per.mkdir(exist_ok=True)
    for key, runs in result.runs_by_scenario.items():
        ok = {p: r for p, r in runs.items() if isinstance(r, PolicyRun)}
        scenario_json = {
            "scenario": key,
            "runs": bench.to_json(_as_bench(key, ok))["runs"],
            "failed": {p: r.error for p, r in runs.items() if isinstance(r, executors.Failed)},
        }
        (per / f"{key}.json").write_text(json.dumps(scenario_json) + "\n")
    return plots


def _as_bench(key: str, runs: Mapping[str, PolicyRun]) -> bench.BenchResult:
    return bench.BenchResult(
        scenario=key,
        description="",
        policies=tuple(runs),
        seeds=(0,),
        multipliers=(1.0,),
        runs=tuple(runs.values()),
        summaries={},
        base_multiplier=1.0,
        wall_s_by_policy={},
    )
