"""Speed of the fleet simulator: one hour of a 20-replica fleet at 100 req/s.

Target (issue 3): <= 60 s wall time on one core, peak memory <= 2 GB. Run:

    .venv/bin/python bench/sim_speed.py [--duration-s 3600] [--rate-rps 100] [--replicas 20]

Prints one markdown table row set; scripts/bench-report.sh pastes it into
docs/benchmarks.md. Wall time covers workload generation, simulation and scoring.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
from tierscale_sim.fleet import Fleet, FleetConfig
from tierscale_sim.policies.static import StaticPolicy
from tierscale_sim.replica_port import EngineBackend
from tierscale_sim.scoring import score_run
from tierscale_sim.workloads import MixPhase, RateProfile, TokenSpec, synthetic_workload

from tierscale.domain.tiers import Pool, Scaling, Slo, Tier
from tierscale_predictor.profiles import load_profile


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=3600.0)
    parser.add_argument("--rate-rps", type=float, default=100.0)
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--profile", default="llama-3.1-8b-h100")
    args = parser.parse_args(argv)
    tier = Tier(
        name="chat",
        namespace="bench",
        model="llama-3.1-8b",
        slo=Slo(ttft_s=1.0, tpot_s=0.1),
        pool=Pool(deployment="chat", min_replicas=args.replicas, max_replicas=args.replicas),
        scaling=Scaling(cold_start_s=60.0),
    )
    profile = load_profile(args.profile)
    started = time.perf_counter()
    cpu_started = time.process_time()
    workload = synthetic_workload(
        [tier.key],
        RateProfile.constant(args.rate_rps, args.duration_s),
        args.duration_s,
        [MixPhase(0.0, {tier.key: 1.0})],
        {tier.key: TokenSpec(1155, 211, "lognormal", 1.0)},
        np.random.default_rng(0),
    )
    generated = time.perf_counter()
    fleet = Fleet(
        [tier],
        workload,
        StaticPolicy({tier.key: args.replicas}),
        lambda pool: EngineBackend(profile),
        FleetConfig(initial_replicas_by_pool={tier.key: args.replicas}),
        np.random.default_rng(0),
    )
    run = fleet.run()
    simulated = time.perf_counter()
    score = score_run(run, [tier], "static", 0)
    done = time.perf_counter()
    cpu_s = time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("| measure | value | target |")
    print("|---|---|---|")
    print(
        f"| simulated | {args.duration_s:.0f} s, {args.replicas} replicas, "
        f"{args.rate_rps:g} req/s ({profile.name}) | 3600 s, 20 replicas, 100 req/s |"
    )
    print(f"| requests | {workload.num_requests} (all served: {score.rejected == 0}) | ~360k |")
    parts = (
        f"workload {generated - started:.1f} s, simulation {simulated - generated:.1f} s, "
        f"scoring {done - simulated:.1f} s"
    )
    print(f"| wall time | {done - started:.1f} s ({parts}) | <= 60 s |")
    print(f"| CPU time of this process | {cpu_s:.1f} s (the wall time on an idle core) | - |")
    print(f"| peak memory (max RSS) | {peak_mb:.0f} MB | <= 2048 MB |")
    print(f"| attainment (TTFT 1 s, TPOT 100 ms) | {100 * score.attainment_frac:.2f}% | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
