"""Renders docs/benchmarks.md from the results.json files `tierscale bench` wrote.

    python -m bench.benchmarks_doc docs/bench docs/benchmarks.md

Called by scripts/bench-report.sh after the runs. Every number in the report comes from
a results file; the papers' numbers are quoted from docs (background) for comparison, and
each target of issue 3 is checked and printed as met or with its distance.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PAPER_SABER = {
    ("w1", 5): (80, 52),
    ("w1", 10): (49, 33),
    ("w1", 20): (36, 28),
    ("w2", 20): (61, 54),
    ("w3", 10): (74, 58),
    ("w3", 20): (50, 24),
}
"""(workload, req/s) -> (SABER %, best static %) from SABER's released data."""

S3_SCENARIOS = (
    "s3-azure-code",
    "s3-azure-conv",
    "s3-azure-conv-cold0",
    "s3-azure-conv-cold180",
    "s3-budget-crunch",
    "s3-diurnal",
)


def _load(bench_dir: Path, name: str) -> dict[str, Any] | None:
    path = bench_dir / name / "results.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in runs) / len(runs) if runs else float("nan")


def _spread(values: list[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "-"
    mean = sum(values) / len(values)
    text = fmt.format(mean)
    if len(values) > 1 and max(values) > min(values):
        text += f" ({fmt.format(min(values))}..{fmt.format(max(values))})"
    return text


def _section_speed(bench_dir: Path) -> list[str]:
    out = ["## Simulator speed", ""]
    speed = bench_dir / "speed.md"
    out.append("`.venv/bin/python bench/sim_speed.py` (static 20-replica fleet, Poisson):")
    out.append("")
    out.append(speed.read_text().strip() if speed.exists() else "_not measured yet_")
    out.append("")
    return out


def _section_saber(bench_dir: Path) -> list[str]:
    out = [
        "## S1: SABER reproduction (one Qwen2.5-Coder-3B replica)",
        "",
        "`tierscale bench --scenario scenarios/s1-saber-wN.yaml --sweep --seeds 3`. Cells: "
        "% of requests whose whole answer met its task's end-to-end SLA, mean (min..max) "
        "over 3 seeds of 100 requests. `static` is the best max_num_seqs in 10..100 chosen "
        "with hindsight per rate and seed. `tierscale` runs the production loop on the one "
        "replica (vLLM's default batch limit; the plan's admission caps of the four tiers, "
        "summed, guard it, as all four tiers' traffic reaches it). Paper: SABER vs best "
        "static from SABER's released data.",
        "",
        "| workload | req/s | static | saber | tierscale | saber - static | paper static "
        "| paper saber | paper gain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    gaps: list[str] = []
    for w in ("w1", "w2", "w3"):
        data = _load(bench_dir, f"s1-saber-{w}")
        if data is None:
            out.append(f"| {w.upper()} | - | _not run_ | | | | | | |")
            continue
        for mult in data["rate_multipliers"]:
            by = {
                p: [
                    100 * r["attainment"]
                    for r in data["runs"]
                    if r["policy"] == p and r["rate_multiplier"] == mult
                ]
                for p in ("static", "saber", "tierscale")
            }
            rate = int(mult)
            st, sa, ts = by["static"], by["saber"], by["tierscale"]
            diff = (sum(sa) / len(sa) - sum(st) / len(st)) if st and sa else float("nan")
            paper = PAPER_SABER.get((w, rate))
            paper_cells = f"{paper[1]} | {paper[0]} | {paper[0] - paper[1]:+d}" if paper else "| |"
            out.append(
                f"| {w.upper()} | {rate} | {_spread(st)} | {_spread(sa)} | {_spread(ts)} "
                f"| {diff:+.1f} | {paper_cells} |"
            )
            if paper and abs(diff - (paper[0] - paper[1])) > 5:
                gaps.append(
                    f"{w.upper()} at {rate} req/s: our SABER gain {diff:+.1f} points vs the "
                    f"paper's {paper[0] - paper[1]:+d}."
                )
    out.append("")
    if gaps:
        out.append("Gaps over 5 points to the paper's gain:")
        out.append("")
        out += [f"- {g}" for g in gaps]
        out.append("")
    return out


def _sweep_goodput(data: Mapping[str, Any], policy: str) -> float | None:
    s = data["summaries"].get(policy)
    if not s or not s.get("sweep_goodput_rps"):
        return None
    return float(s["sweep_goodput_rps"]["mean"])


def _optimal(bench_dir: Path) -> dict[str, float]:
    """scenario -> optimal rate, as `bench/polyserve_optimal.py` measured it."""
    path = bench_dir / "s2-optimal.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {str(r["scenario"]): float(r["optimal_rps"]) for r in rows}


def _section_polyserve(bench_dir: Path) -> list[str]:
    out = ["## S2: PolyServe reproduction (20 H100 replicas, 4 TPOT tiers)", ""]
    data = _load(bench_dir, "s2-polyserve")
    if data is None:
        return [*out, "_not run yet_", ""]
    optimal = _optimal(bench_dir).get("s2-polyserve", 513.0)
    out += [
        "`tierscale bench --scenario scenarios/s2-polyserve.yaml --sweep --seeds 2`. Goodput "
        "= highest offered load (req/s) at which >= 90% of all requests met PolyServe's "
        "deadline SLO, among the swept loads (x0.2-x1.2 of 513 req/s), mean over seeds. "
        f"Optimal = 20 / sum(share / engine-validated capacity per replica) = {optimal:.0f} "
        "req/s on the current engine (`.venv/bin/python bench/polyserve_optimal.py "
        "scenarios/s2-polyserve.yaml scenarios/s2-polyserve-chunked.yaml --out "
        "docs/bench/s2-optimal.jsonl`; the scenario's 513 was measured on an earlier engine "
        "and stays the sweep's unit). Each run lasts 180 s from 5 replicas per tier; the "
        "first 60 s are simulated, not scored (steady state).",
        "",
        f"| policy | goodput req/s | % of optimal ({optimal:.0f}) "
        "| x best non-PolyServe baseline |",
        "|---|---|---|---|",
    ]
    baselines = ("hpa", "keda", "static", "isolated")
    base_vals = [g for p in baselines if (g := _sweep_goodput(data, p)) is not None]
    best_base = max(base_vals) if base_vals else None
    for policy in data["policies"]:
        g = _sweep_goodput(data, policy)
        if g is None:
            continue
        ratio = f"{g / best_base:.2f}x" if best_base else "-"
        out.append(f"| {policy} | {g:.0f} | {100 * g / optimal:.1f}% | {ratio} |")
    out += [
        "",
        "Paper (H200 profiles, its own baselines random / least cycle time / static "
        "chunking): PolyServe 1.23x (disaggregated) / 1.18x (co-located) the best baseline, "
        "up to 92.5% of optimal.",
        "",
    ]
    ts, ps = _sweep_goodput(data, "tierscale"), _sweep_goodput(data, "polyserve")
    oracle = _sweep_goodput(data, "oracle")
    if ts is not None and best_base:
        verdict = "met" if ts >= 1.25 * best_base else f"not met ({ts / best_base:.2f}x)"
        out.append(f"- Target tierscale >= 1.25x best non-PolyServe baseline: {verdict}.")
    if ts is not None and oracle:
        verdict = "met" if ts >= 0.95 * oracle else f"not met ({100 * ts / oracle:.0f}%)"
        out.append(f"- Target tierscale >= 95% of the oracle's goodput: {verdict}.")
    if ps is not None and best_base:
        out.append(
            f"- Our PolyServe re-implementation: {ps / best_base:.2f}x the best baseline "
            f"(paper 1.23x), {100 * ps / optimal:.1f}% of optimal (paper up to 92.5%)."
        )
    out += ["", "![attainment vs load](bench/s2-polyserve/attainment_vs_load.png)", ""]
    out += _section_polyserve_chunked(bench_dir)
    burst = _load(bench_dir, "s2-polyserve-burst")
    if burst is not None:
        out += ["### Tier-mix inversion burst (60% of optimal, mix inverted at 60 s)", ""]
        out += [_summary_table(burst), ""]
        out += ["![replicas](bench/s2-polyserve-burst/replicas_over_time.png)", ""]
    return out


def _section_polyserve_chunked(bench_dir: Path) -> list[str]:
    data = _load(bench_dir, "s2-polyserve-chunked")
    if data is None:
        return []
    optimal = _optimal(bench_dir).get("s2-polyserve-chunked")
    out = [
        "### Reproduction attempt: prefill chunks sized to each tier's TPOT",
        "",
        "`tierscale bench --scenario scenarios/s2-polyserve-chunked.yaml --sweep --seeds 2`: "
        "the same setup with each tier's engine running --max-num-batched-tokens 512 / 1024 / "
        "2048 / 4096 for TPOT 20 / 30 / 50 / 100 ms (an iteration that fits the tier's TPOT, "
        "as PolyServe's per-tier engines do), every policy on these engines"
        + (f"; optimal {optimal:.0f} req/s on them." if optimal else "."),
        "",
        "| policy | goodput req/s | % of optimal |",
        "|---|---|---|",
    ]
    for policy in data["policies"]:
        g = _sweep_goodput(data, policy)
        if g is None:
            continue
        share = f"{100 * g / optimal:.1f}%" if optimal else "-"
        out.append(f"| {policy} | {g:.0f} | {share} |")
    out += ["", "![attainment vs load](bench/s2-polyserve-chunked/attainment_vs_load.png)", ""]
    return out


DEVELOPMENT_SEEDS = (1, 1000, 1001, 98, 99, 7, 2027, 20261130)
"""Generator seeds development used: 1, 1000 and 1001 while the generator and baselines
were built, 98 and 99 in the tests, 7, 2027 and 20261130 to judge planner changes A/B
(20261130 was the report's seed until 2026-12-03; rules were found on its scenarios)."""

_SEEDS_USED = (
    "development drew seed 1 and ran seeds 1000 and 1001; the tests draw seeds 98 and 99; "
    "seeds 7, 2027 and 20261130 judged planner changes A/B: 20261130 was this report's "
    "seed until 2026-12-03, and once planner rules were found on it, no longer untouched; "
    "its last run is in docs/bench/NOTES.md"
)


def seed_provenance(seed: int) -> str:
    """What the report may claim about its generator seed: untouched, or not."""
    if seed in DEVELOPMENT_SEEDS:
        return (
            f"Generator seed {seed} was used while developing, so this is not traffic "
            f"nobody tuned for ({_SEEDS_USED})."
        )
    return (
        f"Generator seed {seed} was never used while the generator, the baselines or this "
        f"report were developed ({_SEEDS_USED})."
    )


def _section_generalisation(bench_dir: Path) -> list[str]:
    out = ["## Generalisation: random scenarios nobody tuned for", ""]
    path = bench_dir / "generalisation" / "generalisation.json"
    if not path.exists():
        return [*out, "_not run yet_", ""]
    data = json.loads(path.read_text())
    oracle_met = data.get("oracle_met_frac")
    out += [
        f"`tierscale bench --generate {data['count']} --seed {data['seed']} --out "
        "docs/bench/generalisation` (the generator, its dimensions and the policies: "
        'docs/scenarios.md, "Random scenarios"). '
        f"{seed_provenance(int(data['seed']))} "
        f"{data['count']} scenarios x {len(data['policies'])} policies ran in "
        f"{data['wall_s'] / 60:.0f} min on this machine's 2 shared cores "
        f"({data['executor']}, {data['jobs']} jobs). The oracle met every tier in "
        f"{100 * (oracle_met or 0):.0f}% of the scenarios.",
        "",
        "| policy | every tier met | where the oracle met every tier "
        "| GPU-h / oracle: median | p90 | worst | best |",
        "|---|---|---|---|---|---|---|",
    ]
    for policy in data["policies"]:
        s = data["summary"].get(policy)
        if s is None:
            continue
        r = s["gpu_hours_vs_oracle"] or {}
        where = s["met_where_oracle_met_frac"]

        def ratio(key: str, r: Mapping[str, float] = r) -> str:
            return f"{r[key]:.2f}x" if key in r else "-"

        out.append(
            f"| {policy} | {100 * s['all_tiers_met_frac']:.0f}% | "
            + ("-" if where is None else f"{100 * where:.0f}%")
            + f" | {ratio('median')} | {ratio('p90')} | {ratio('max')} | {ratio('min')} |"
        )
    subsets = data.get("by_subset", {})
    if subsets:
        policies = data["policies"]
        out += [
            "",
            "By kind of scenario: share with every tier met / median GPU-h vs oracle.",
            "",
            "| scenarios | n | " + " | ".join(policies) + " |",
            "|" + "---|" * (2 + len(policies)),
        ]
        for label, by_policy in subsets.items():
            n = max((v["scenarios"] for v in by_policy.values()), default=0)
            cells = []
            for p in policies:
                v = by_policy.get(p)
                if v is None:
                    cells.append("")
                    continue
                med = (v["gpu_hours_vs_oracle"] or {}).get("median")
                cell_ratio = "-" if med is None else f"{med:.2f}x"
                cells.append(f"{100 * v['all_tiers_met_frac']:.0f}% / {cell_ratio}")
            out.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Per-scenario rows (what each scenario drew, and every policy's result): "
        "[docs/bench/generalisation/generalisation.md](bench/generalisation/generalisation.md);"
        " every scenario file: `docs/bench/generalisation/scenarios/`.",
        "",
        "![generalisation](bench/generalisation/generalisation.png)",
        "",
    ]
    return out


def _summary_table(data: Mapping[str, Any]) -> str:
    first = next(iter(data["summaries"].values()))
    tiers = list(first["attainment_by_tier"])
    head = ["policy"] + [t.split("/")[-1] for t in tiers]
    head += ["all tiers met (seeds)", "GPU-h", "vs oracle", "scale events"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for policy in data["policies"]:
        s = data["summaries"].get(policy)
        if s is None:
            continue
        runs = [
            r
            for r in data["runs"]
            if r["policy"] == policy and r["rate_multiplier"] == data["base_multiplier"]
        ]
        cells = [policy]
        for t in tiers:
            cells.append(_spread([100 * r["tiers"][t]["attainment"] for r in runs], "{:.2f}%"))
        cells.append(f"{100 * s['tiers_met_frac']:.0f}%")
        cells.append(_spread([r["gpu_hours"] for r in runs], "{:.2f}"))
        ratios = [r["gpu_hours_vs_oracle"] for r in runs if r["gpu_hours_vs_oracle"]]
        cells.append(_spread(ratios, "{:.2f}x"))
        cells.append(_spread([float(r["scale_ups"] + r["scale_downs"]) for r in runs], "{:.0f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _targets_s3(data: Mapping[str, Any]) -> list[str]:
    s = data["summaries"]
    out: list[str] = []
    ts = s.get("tierscale")
    if ts is None:
        return out
    worst = min(v["mean"] for v in ts["attainment_by_tier"].values())
    out.append(
        "- every tier >= 99%: "
        + ("met" if worst >= 0.99 else f"not met (worst tier {100 * worst:.2f}%)")
    )
    gpu = ts["gpu_hours"]["mean"]
    for other, limit, label in (
        ("hpa", 0.70, ">= 30% fewer GPU-h than hpa"),
        ("isolated", 0.90, ">= 10% fewer GPU-h than isolated"),
    ):
        if other in s:
            ratio = gpu / s[other]["gpu_hours"]["mean"]
            verdict = "met" if ratio <= limit else "not met"
            out.append(f"- {label}: {verdict} (tierscale/{other} = {ratio:.2f})")
    if "oracle" in s:
        ratio = gpu / s["oracle"]["gpu_hours"]["mean"]
        verdict = "met" if ratio <= 1.10 else "not met"
        met = 100 * s["oracle"]["tiers_met_frac"]
        out.append(
            f"- GPU-h within 10% of the oracle: {verdict} ({ratio:.2f}x; the oracle itself "
            f"met every tier in {met:.0f}% of seeds)"
        )
    return out


def _section_s3(bench_dir: Path) -> list[str]:
    out = [
        "## S3: autoscaling on real traces and a diurnal ramp",
        "",
        "Cells: attainment per tier = share of the tier's requests meeting both its TTFT "
        "and TPOT SLO (rejected = missed), mean (min..max) over seeds; GPU-hours count "
        "every replica from the moment it is requested (cold start included) until it has "
        "drained; `vs oracle` = GPU-hours / the oracle's in the same seed. Requests of "
        "the first 5 minutes are simulated but not scored (`warmup_s: 300`: autoscalers "
        "start at minReplicas, `static` and `oracle` with their own fleet Ready); "
        "GPU-hours cover the whole hour. The oracle keeps the cheapest headroom factor "
        "that meets every tier, else its x1 sizing (docs/scenarios.md).",
        "",
    ]
    for name in S3_SCENARIOS:
        data = _load(bench_dir, name)
        out.append(f"### {name}")
        out.append("")
        if data is None:
            out += ["_not run yet_", ""]
            continue
        out += [
            data["description"],
            "",
            f"`tierscale bench --scenario scenarios/{name}.yaml --seeds {len(data['seeds'])}`",
            "",
            _summary_table(data),
            "",
            "Targets (issue 3) for tierscale:",
            "",
            *_targets_s3(data),
            "",
            f"![replicas over time](bench/{name}/replicas_over_time.png)",
            "",
        ]
    return out


HEADER = """# Benchmarks: tierscale against the baselines in the fleet simulator

Regenerate everything with `scripts/bench-report.sh` (runs every shipped scenario, then
`python -m bench.benchmarks_doc docs/bench docs/benchmarks.md`). Per-scenario
tables, results.json and plots are in `docs/bench/<scenario>/`. Scenario files:
`scenarios/`, schema: docs/scenarios.md. Every policy of a (seed, load) point sees the
identical request stream. The simulator runs the engine model of `tierscale_predictor`
(vLLM V1 continuous batching on fitted step-time profiles), not real GPUs: absolute
numbers are the model's, comparisons between policies are the point.

Policies: `tierscale` (the production planner, `tierscale.policy.planner.plan`),
`isolated` (the same planner with borrow/lend off), `hpa` (KV-cache usage, target 0.7),
`keda` (waiting requests, target 5 per replica), `hpa-tuned` and `keda-tuned` (their
targets chosen per tier with hindsight), `dynamo` (in the manner of NVIDIA Dynamo's SLA
planner), `static` (best fixed fleet with hindsight), `polyserve` and `saber`
(re-implementations of the papers' algorithms), `oracle` (future demand known, instant
scaling, sized by engine-validated capacity; see docs/scenarios.md for each, why the
oracle is a reference, and the `fluid bound` in each results.md). Policies with reasons
(`tierscale`, `isolated`, `dynamo`) record them per tick in results.json and draw them in
`decisions_<policy>.png`.
"""


def render(bench_dir: Path) -> str:
    parts = [HEADER]
    parts += _section_speed(bench_dir)
    parts += _section_generalisation(bench_dir)
    parts += _section_s3(bench_dir)
    parts += _section_polyserve(bench_dir)
    parts += _section_saber(bench_dir)
    notes = bench_dir / "NOTES.md"
    if notes.exists():
        parts += ["## Notes and honest gaps", "", notes.read_text().strip(), ""]
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.benchmarks_doc BENCH_DIR OUT.md", file=sys.stderr)
        return 2
    bench_dir, out = Path(argv[0]), Path(argv[1])
    out.write_text(render(bench_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
