"""What any reactive autoscaler could reach without standing headroom (a benchmark).

    .venv/bin/python -m bench.reactive_bound SCENARIO.yaml [SCENARIO.yaml ...] [--seed 0]

The oracle sizes each tier with hindsight: it knows a flash crowd is coming and has the
replicas Ready when it arrives. A reactive autoscaler only sees it arrive, and the
replicas it asks for then serve after the cold start. This bounds what a reactive one
could reach, per tier, with every advantage but foresight: its pool on its own (no
spillover, no budget), sized at each control interval to the rate of the interval just
past plus the rate that drains its queue over the cold start, at the engine's true
capacity per replica (`runner.capacity_of`, the probe that sizes `oracle` and `static`),
with new replicas Ready exactly one cold start later and surplus ones removed at once.

In each control interval the Ready replicas carry at most their capacity times the
interval's length of the tier's requests within SLO (the capacity is the rate at which one
replica keeps the target under Poisson arrivals); the requests beyond that count as
missed. Nothing is carried over to the next interval and everything up to the capacity
counts as met, so the share it prints is an upper bound for a reactive policy holding no
headroom. Where it is below the tier's target, only capacity held before the demand
arrives meets it: the script also finds the least standing headroom (replicas sized for
`h` times the rate, `h` on a 0.05 grid up to 4) with which the bound reaches the target,
and the replica-seconds that costs against no headroom. `maxReplicas` binds as in the
runs; no spillover, no budget.

Only where the tier's tail is met (the model's view, `capacity_fidelity.tail_regime`) is
the probe's capacity a service rate. Where the longest prompts miss the TTFT SLO on any
replica ("lean", "tail unmet") the probe finds the rate at which one replica keeps the
target with those misses included, far below what replicas carry together:
gen-s20261130-001's chat-0 probes at 0.64 req/s, 13 req/s at its 21 replicas, and the
oracle met it at a peak of ~30. The bound says nothing there.

Deterministic: the request sample is the scenario's seed `--seed` at load 1.0, the runs'
own draw. Numbers are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tierscale_sim import runner, scenario

from bench.capacity_fidelity import tail_regime

HEADROOM_STEP = 0.05
HEADROOM_MAX = 4.0


@dataclass(frozen=True, slots=True)
class Outcome:
    attainment: float
    """Share of the tier's requests within what the Ready replicas carry in SLO."""
    replica_s: float
    """Replica-seconds the pool held (Ready or loading)."""


def simulate(
    arrivals: np.ndarray,
    capacity_rps: float,
    cold_start_s: float,
    interval_s: float,
    min_replicas: int,
    max_replicas: int,
    headroom: float = 1.0,
) -> Outcome:
    """One tier's pool under the reactive controller above; `arrivals[s]` is the number
    of requests arriving in second s."""
    total = float(arrivals.sum())
    if total <= 0.0 or capacity_rps <= 0.0:
        return Outcome(1.0 if total <= 0.0 else 0.0, 0.0)
    step = max(int(round(interval_s)), 1)
    cold = int(math.ceil(cold_start_s))
    ready = _replicas(
        float(arrivals[:step].sum()) / step * headroom, capacity_rps, min_replicas, max_replicas
    )
    loading: list[int] = []  # the second each loading replica becomes Ready
    missed = held = 0.0
    for start in range(0, len(arrivals), step):
        if start > 0:
            rate = float(arrivals[start - step : start].sum()) / step
            want = _replicas(rate * headroom, capacity_rps, min_replicas, max_replicas)
            while ready + len(loading) < want:
                loading.append(start + cold)
            while ready + len(loading) > want and loading:
                loading.pop()
            ready = min(ready, want)
        carried = 0.0
        for s in range(start, min(start + step, len(arrivals))):
            ready += sum(1 for at in loading if at <= s)
            loading = [at for at in loading if at > s]
            held += ready + len(loading)
            carried += ready * capacity_rps
        missed += max(0.0, float(arrivals[start : start + step].sum()) - carried)
    return Outcome(1.0 - missed / total, held)


def _replicas(rate_rps: float, capacity_rps: float, least: int, most: int) -> int:
    return min(max(math.ceil(rate_rps / capacity_rps - 1e-9), least), most)


def least_headroom(
    arrivals: np.ndarray,
    capacity_rps: float,
    cold_start_s: float,
    interval_s: float,
    min_replicas: int,
    max_replicas: int,
    target: float,
) -> tuple[float, Outcome] | None:
    """The least headroom on the grid with which the bound reaches `target`; None if none."""
    steps = int(round((HEADROOM_MAX - 1.0) / HEADROOM_STEP))
    for k in range(steps + 1):
        h = 1.0 + k * HEADROOM_STEP
        out = simulate(
            arrivals, capacity_rps, cold_start_s, interval_s, min_replicas, max_replicas, h
        )
        if out.attainment >= target:
            return h, out
    return None


def rows(path: Path, seed: int) -> list[str]:
    spec = scenario.load_scenario(path)
    setup = runner.prepare(spec, path)
    workload = runner.build_workload(setup, seed, 1.0)
    seconds = int(math.ceil(workload.duration_s))
    out = []
    for i, (tier, fleet_tier) in enumerate(zip(setup.tiers, setup.fleet_tiers, strict=True)):
        mine = workload.arrival_s[workload.tier_index == i]
        arrivals = np.bincount(np.minimum(mine.astype(int), seconds - 1), minlength=seconds)
        capacity_rps = runner.capacity_of(setup, i)
        args = (
            arrivals.astype(float),
            capacity_rps,
            fleet_tier.scaling.cold_start_s,
            spec.control_interval_s,
            tier.pool.min_replicas,
            tier.pool.max_replicas,
        )
        plain = simulate(*args)
        target = tier.slo.attainment_frac
        found = least_headroom(*args, target=target)
        need = "none on the grid"
        if found is not None:
            h, out_h = found
            extra = out_h.replica_s / plain.replica_s - 1.0 if plain.replica_s > 0 else 0.0
            need = f"x{h:.2f} ({extra:+.0%} replica-seconds)"
        out.append(
            f"| {spec.name} | {tier.name} | {tail_regime(setup, workload, i)} | {target:.0%}"
            f" | {capacity_rps:.2f} |"
            f" {fleet_tier.scaling.cold_start_s:g} s | {plain.attainment:.1%} | {need} |"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        "| scenario | tier | the model's tail | target | engine req/s per replica | cold start"
        " | reactive bound, no headroom | least headroom that meets the target |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in args.scenarios:
        print("\n".join(rows(path, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
