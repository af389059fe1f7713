"""The optimal rate of the S2 PolyServe scenarios, measured on their engines.

    .venv/bin/python bench/polyserve_optimal.py scenarios/s2-polyserve.yaml [...] [--out F]

Optimal = replicas / sum over tiers of (share / engine-validated capacity of one replica
of the tier's engine), the capacity at TTFT 0.5 s (the middle of PolyServe's per-request
TTFT choices), the tier's TPOT, 90th percentile and 90 % attainment, on the scenario's
request lengths (`tierscale_sim.capacity_probe`). Writes a JSON line per scenario with
the capacities and the optimal rate, which the benchmark report reads. A scenario whose
mix changes (`mix_phases`) gets the optimal of each phase's mix too (`optimal_rps_by_phase`,
in phase order; `optimal_rps` is the first phase's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tierscale_sim import capacity_probe, runner, scenario

from tierscale.domain.tiers import Slo

TTFT_S = 0.5


def optimal(path: Path) -> dict[str, object]:
    spec = scenario.load_scenario(path)
    setup = runner.prepare(spec, path)
    workload = runner.build_workload(setup, 0, 1.0)
    phases = spec.workload.mix_phases
    mixes = [p.mix for p in phases] if phases else [spec.workload.tier_mix or {}]
    caps: dict[str, float] = {}
    for i, tier in enumerate(setup.tiers):
        sel = workload.tier_index == i
        caps[tier.name] = capacity_probe.max_rate_rps(
            setup.profiles_by_model[tier.model],
            Slo(TTFT_S, tier.slo.tpot_s, 90.0, 0.9),
            workload.prompt_tokens[sel],
            workload.output_tokens[sel],
            max_num_seqs=tier.pool.max_num_seqs,
            max_num_batched_tokens=tier.pool.max_num_batched_tokens,
        )
    replicas = spec.budget_gpus or 0
    rates = [_optimal(replicas, mix, caps) for mix in mixes]
    out: dict[str, object] = {
        "scenario": spec.name,
        "capacity_rps": caps,
        "replicas": replicas,
        "optimal_rps": rates[0],
    }
    if phases:
        out["optimal_rps_by_phase"] = rates
    return out


def _optimal(replicas: int, mix: dict[str, float], caps: dict[str, float]) -> float:
    """replicas / sum(share / capacity): the rate `replicas` serve at this tier mix."""
    total = sum(mix.values())
    return replicas / sum(mix.get(name, 0.0) / total / cap for name, cap in caps.items())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="also write the results here (JSON lines)")
    args = parser.parse_args(argv)
    lines = [json.dumps(optimal(p)) for p in args.scenarios]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
