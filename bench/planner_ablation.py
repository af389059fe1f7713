"""Planner ablations: the production planner with one rule changed, on shipped scenarios.

Every number docs/planner.md and the PlannerConfig docstrings quote for a planner rule
(smoothed p99 lengths, margins-last, opt-in TPOT/TTFT calibration) is measured here:
the same scenario, seeds and load as `tierscale bench`, the `tierscale` policy with a
`PlannerConfig` variant. Also measures how much the capacity probe's answer moves
between request samples at two sample sizes. Run:

    .venv/bin/python bench/planner_ablation.py [--seeds 2] [--probe]

Takes ~15 min on one core. Prints markdown tables; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tierscale_sim import capacity_probe, runner, scenario
from tierscale_sim.scoring import RunScore

from tierscale.cli.plan import solver_output_to_stderr
from tierscale.policy.planner import PlannerConfig

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, PlannerConfig] = {
    "default": PlannerConfig(),
    "no p99 smoothing": PlannerConfig(length_smoothing=1.0),
    "no margins-last": PlannerConfig(margins_yield_to_demand=False),
    "calibrate TPOT": PlannerConfig(calibrate_tpot=True),
    "calibrate TPOT+TTFT": PlannerConfig(calibrate_tpot=True, calibrate_ttft=True),
}
SCENARIOS = [
    ("s3-azure-conv", 1.0),
    ("s3-azure-code", 1.0),
    ("s3-diurnal", 1.0),
    ("s3-budget-crunch", 1.0),
    ("s2-polyserve", 0.8),
]


def _run(setup: runner.Setup, config: PlannerConfig, seed: int, multiplier: float) -> RunScore:
    return runner.run_policy(setup, "tierscale", seed, multiplier, planner_config=config).score


def ablations(seeds: int) -> list[str]:
    lines: list[str] = []
    for name, multiplier in SCENARIOS:
        path = ROOT / "scenarios" / f"{name}.yaml"
        setup = runner.prepare(scenario.load_scenario(path), path)
        tiers = [t.key.split("/")[-1] for t in setup.tiers]
        lines += [
            f"### {name} (load x{multiplier:g}, seeds 0..{seeds - 1})",
            "",
            "| variant | " + " | ".join(tiers) + " | all requests | GPU-h |",
            "|---|" + "---|" * (len(tiers) + 2),
        ]
        for label, config in VARIANTS.items():
            scores = [_run(setup, config, seed, multiplier) for seed in range(seeds)]
            cells = [
                f"{100 * np.mean([s.by_tier[t.key].attainment_frac for s in scores]):.2f}%"
                for t in setup.tiers
            ]
            overall = 100 * np.mean([s.attainment_frac for s in scores])
            gpu_h = np.mean([s.gpu_hours for s in scores])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {overall:.2f}% | {gpu_h:.2f} |")
        lines.append("")
    return lines


def probe_spread(seeds: int) -> list[str]:
    """Capacity per replica of each S2 tier, probed on different request samples."""
    path = ROOT / "scenarios" / "s2-polyserve.yaml"
    setup = runner.prepare(scenario.load_scenario(path), path)
    lines = [
        "### capacity probe: req/s per replica of each S2 tier, by request sample",
        "",
        "| requests | sample (seed, load) | " + " | ".join(t.name for t in setup.tiers) + " |",
        "|---|---|" + "---|" * len(setup.tiers),
    ]
    for requests in (800, 3000):
        for seed, load in [(s, 0.8) for s in range(seeds)] + [(0, 0.2)]:
            w = runner.build_workload(setup, seed, load)
            caps = []
            for i, tier in enumerate(setup.tiers):
                sel = w.tier_index == i
                caps.append(
                    capacity_probe.max_rate_rps(
                        setup.profiles_by_model[tier.model],
                        tier.slo,
                        w.prompt_tokens[sel],
                        w.output_tokens[sel],
                        settings=replace(capacity_probe.ProbeSettings(), requests=requests),
                    )
                )
            lines.append(
                f"| {requests} | ({seed}, {load:g}) | "
                + " | ".join(f"{c:.2f}" for c in caps)
                + " |"
            )
    return [*lines, ""]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--trace-dir",
        default=str(ROOT.parent / "shared" / "traces"),
        help="used when $TIERSCALE_TRACE_DIR is unset",
    )
    parser.add_argument("--probe", action="store_true", help="also measure the probe's spread")
    args = parser.parse_args(argv)
    os.environ.setdefault("TIERSCALE_TRACE_DIR", args.trace_dir)
    with solver_output_to_stderr():  # HiGHS#2783 prints stray lines to fd 1
        lines = ablations(args.seeds)
        if args.probe:
            lines += probe_spread(args.seeds)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
