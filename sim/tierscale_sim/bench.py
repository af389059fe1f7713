"""A benchmark: every policy x seed x load point of a scenario, and their summary.

Summaries are means with the spread (min..max) over seeds, and every policy is set
against the oracle of the same seed and load, so "x% of oracle" compares like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tierscale_sim import executors
from tierscale_sim.fleet import TickRecord
from tierscale_sim.runner import PolicyRun, Setup


@dataclass(frozen=True, slots=True)
class Stat:
    mean: float
    lo: float
    hi: float

    @staticmethod
    def of(values: Sequence[float]) -> Stat:
        arr = np.asarray(values, dtype=np.float64)
        return Stat(float(arr.mean()), float(arr.min()), float(arr.max()))

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "min": self.lo, "max": self.hi}


@dataclass(frozen=True, slots=True)
class PolicySummary:
    policy: str
    attainment_by_tier: Mapping[str, Stat]
    attainment: Stat
    goodput_rps: Stat
    gpu_hours: Stat
    scale_events: Stat
    gpu_hours_vs_oracle: Stat | None
    tiers_met_frac: float
    """Fraction of seeds in which every tier met its target."""
    sweep_goodput_rps: Stat | None = None
    """With --sweep: highest offered load at which the attainment criterion held."""


@dataclass(frozen=True, slots=True)
class BenchResult:
    scenario: str
    description: str
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    multipliers: tuple[float, ...]
    runs: tuple[PolicyRun, ...]
    summaries: Mapping[str, PolicySummary]
    """At the base load (multiplier 1.0, or the sweep's first point)."""
    base_multiplier: float
    wall_s_by_policy: Mapping[str, float]
    slo_by_tier: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """tier key -> (TTFT, TPOT) SLO in seconds, for the plots."""


def run_bench(
    setup: Setup,
    policies: Sequence[str],
    seeds: Sequence[int],
    multipliers: Sequence[float],
    progress: executors.ProgressFn | None = None,
    executor: str = "serial",
    jobs: int | None = None,
    ray_address: str | None = None,
) -> BenchResult:
    """Run every policy x seed x load point (on `executor`: results are the same on all)."""
    tasks = [
        executors.Task(0, name, seed, mult)
        for mult in multipliers
        for seed in seeds
        for name in policies
    ]
    wall: dict[str, float] = dict.fromkeys(policies, 0.0)

    def done(d: executors.Done, n: int, total: int) -> None:
        wall[d.task.policy] += d.wall_s
        if progress:
            progress(d, n, total)

    outcomes = executors.run_tasks([setup], tasks, executor, jobs, done, ray_address)
    runs = [r for r in outcomes if isinstance(r, PolicyRun)]  # no task keeps going
    base = 1.0 if 1.0 in multipliers else multipliers[0]
    summaries = summarize(runs, policies, base, setup, len(multipliers) > 1)
    return BenchResult(
        scenario=setup.spec.name,
        description=setup.spec.description,
        policies=tuple(policies),
        seeds=tuple(seeds),
        multipliers=tuple(multipliers),
        runs=tuple(runs),
        summaries=summaries,
        base_multiplier=base,
        wall_s_by_policy=wall,
        slo_by_tier={t.key: (t.slo.ttft_s, t.slo.tpot_s) for t in setup.tiers},
    )


def passes(run: PolicyRun, setup: Setup) -> bool:
    """The sweep's criterion: overall attainment >= target, or every tier at its own."""
    target = setup.spec.sweep.attainment_target if setup.spec.sweep else None
    if target is not None:
        return run.score.attainment_frac >= target
    return run.score.all_tiers_met


def summarize(
    runs: Sequence[PolicyRun],
    policies: Sequence[str],
    base: float,
    setup: Setup,
    swept: bool,
) -> dict[str, PolicySummary]:
    at_base = [r for r in runs if r.score.rate_multiplier == base]
    oracle_by_seed = {
        r.score.seed: r.score.gpu_hours for r in at_base if r.score.policy == "oracle"
    }
    out: dict[str, PolicySummary] = {}
    for name in policies:
        mine = [r.score for r in at_base if r.score.policy == name]
        if not mine:
            continue
        keys = list(mine[0].by_tier)
        ratios = [
            s.gpu_hours / oracle_by_seed[s.seed]
            for s in mine
            if oracle_by_seed.get(s.seed, 0.0) > 0
        ]
        sweep = None
        if swept:
            best: list[float] = []
            for seed in sorted({s.seed for s in mine}):
                ok = [
                    r.score.offered_rps
                    for r in runs
                    if r.score.policy == name and r.score.seed == seed and passes(r, setup)
                ]
                best.append(max(ok) if ok else 0.0)
            sweep = Stat.of(best)
        out[name] = PolicySummary(
            policy=name,
            attainment_by_tier={
                k: Stat.of([s.by_tier[k].attainment_frac for s in mine]) for k in keys
            },
            attainment=Stat.of([s.attainment_frac for s in mine]),
            goodput_rps=Stat.of([s.goodput_rps for s in mine]),
            gpu_hours=Stat.of([s.gpu_hours for s in mine]),
            scale_events=Stat.of([float(s.scale_ups + s.scale_downs) for s in mine]),
            gpu_hours_vs_oracle=Stat.of(ratios) if ratios else None,
            tiers_met_frac=float(np.mean([s.all_tiers_met for s in mine])),
            sweep_goodput_rps=sweep,
        )
    return out


def to_json(result: BenchResult) -> dict[str, Any]:
    """results.json: every run in full, then the summaries."""
    oracle = {
        (r.score.seed, r.score.rate_multiplier): r.score.gpu_hours
        for r in result.runs
        if r.score.policy == "oracle"
    }
    runs: list[dict[str, Any]] = []
    for r in result.runs:
        s = r.score
        o = oracle.get((s.seed, s.rate_multiplier))
        runs.append(
            {
                "policy": s.policy,
                "seed": s.seed,
                "rate_multiplier": s.rate_multiplier,
                "requests": s.requests,
                "rejected": s.rejected,
                "offered_rps": s.offered_rps,
                "attainment": s.attainment_frac,
                "goodput_rps": s.goodput_rps,
                "gpu_hours": s.gpu_hours,
                "gpu_hours_vs_oracle": (s.gpu_hours / o) if o else None,
                "scale_ups": s.scale_ups,
                "scale_downs": s.scale_downs,
                "replicas_started": s.replicas_started,
                "max_kv_usage_frac": s.max_kv_usage_frac,
                "all_tiers_met": s.all_tiers_met,
                "detail": r.detail,
                "decisions": decisions_json(r.timeline),
                "tiers": {
                    k: {
                        "requests": t.requests,
                        "rejected": t.rejected,
                        "attainment": t.attainment_frac,
                        "target": t.target_frac,
                        "ttft_p50_s": t.ttft_p50_s,
                        "ttft_p99_s": t.ttft_p99_s,
                        "tpot_p50_s": t.tpot_p50_s,
                        "tpot_p99_s": t.tpot_p99_s,
                        "e2e_p50_s": t.e2e_p50_s,
                        "e2e_p99_s": t.e2e_p99_s,
                        "e2e_over_slo_cv": t.e2e_over_slo_cv,
                    }
                    for k, t in s.by_tier.items()
                },
            }
        )
    summaries: dict[str, Any] = {}
    for name, p in result.summaries.items():
        summaries[name] = {
            "attainment_by_tier": {k: v.as_dict() for k, v in p.attainment_by_tier.items()},
            "attainment": p.attainment.as_dict(),
            "goodput_rps": p.goodput_rps.as_dict(),
            "gpu_hours": p.gpu_hours.as_dict(),
            "scale_events": p.scale_events.as_dict(),
            "gpu_hours_vs_oracle": (
                p.gpu_hours_vs_oracle.as_dict() if p.gpu_hours_vs_oracle else None
            ),
            "tiers_met_frac": p.tiers_met_frac,
            "sweep_goodput_rps": p.sweep_goodput_rps.as_dict() if p.sweep_goodput_rps else None,
        }
    return {
        "scenario": result.scenario,
        "description": result.description,
        "policies": list(result.policies),
        "seeds": list(result.seeds),
        "rate_multipliers": list(result.multipliers),
        "base_multiplier": result.base_multiplier,
        "wall_s_by_policy": dict(result.wall_s_by_policy),
        "summaries": summaries,
        "runs": runs,
    }


_EXPLAINED_NUMBERS = (
    "desired_replicas",
    "observed_rate_rps",
    "planned_rate_rps",
    "observed_ttft_s",
    "predicted_ttft_s",
    "observed_tpot_s",
    "predicted_tpot_s",
    "capacity_rps_per_replica",
    "spill_in_rps",
    "spill_out_rps",
    "admission_cap_rps",
    "observed_prompt_tokens_mean",
    "planned_prompt_tokens_mean",
    "observed_prompt_tokens_p99",
    "planned_prompt_tokens_p99",
    "observed_output_tokens_mean",
    "planned_output_tokens_mean",
    "observed_output_tokens_p99",
    "planned_output_tokens_p99",
    "bias",
    "bias_floor",
    "observed_running_requests",
    "observed_waiting_requests",
    "batch_limit",
)


def _round(value: float | int | None) -> float | int | None:
    """Four significant digits: the JSON stays small and no plot can tell the difference."""
    if value is None or isinstance(value, int):
        return value
    return float(f"{value:.4g}")


def decisions_json(timeline: Sequence[TickRecord]) -> dict[str, Any] | None:
    """Per tick and tier, why the policy decided what it did, columnar: the reason, the
    numbers it planned with next to the ones observed, and the replicas Ready; each
    message once, when the tier's reason changes. None for policies without reasons."""
    ticks = [rec for rec in timeline if rec.explanation_by_tier]
    if not ticks:
        return None
    keys = list(dict.fromkeys(k for rec in ticks for k in rec.explanation_by_tier))
    by_tier: dict[str, dict[str, list[Any]]] = {}
    messages: list[list[Any]] = []
    for key in keys:
        cols: dict[str, list[Any]] = {"reason": [], "ready_replicas": []}
        cols.update({name: [] for name in _EXPLAINED_NUMBERS})
        last_reason = None
        for rec in ticks:
            e = rec.explanation_by_tier.get(key)
            cols["reason"].append(None if e is None else e.reason)
            cols["ready_replicas"].append(rec.ready_by_pool.get(key))
            for name in _EXPLAINED_NUMBERS:
                cols[name].append(None if e is None else _round(getattr(e, name)))
            if e is not None and e.reason != last_reason:
                messages.append([rec.t_s, key, e.reason, e.message])
                last_reason = e.reason
        by_tier[key] = cols
    return {"t_s": [rec.t_s for rec in ticks], "by_tier": by_tier, "messages": messages}
