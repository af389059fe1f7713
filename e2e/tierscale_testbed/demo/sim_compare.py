"""The fleet simulator's prediction for the demo's traffic and policy, to set beside the
live result.

The scenario (`traffic.sim_scenario`) has the same tiers (the same SLOTier specs), the
same per-tier rates step by step, the same request lengths and latency profile as the
live run. The fleet is configured as the testbed is: the operator's control interval,
metrics window and rate history, and Prometheus' 1 s scrape. The simulator's scenario
file has no keys for the last two, so the run is assembled here from the simulator's
own parts (the same ones `tierscale bench` uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tierscale_sim import runner, scenario, scoring
from tierscale_sim.fleet import Fleet, FleetConfig, TickRecord

from tierscale_testbed.demo import traffic


@dataclass(frozen=True, slots=True)
class SimResult:
    gpu_hours: float
    attainment_by_tier: dict[str, float]
    requests_by_tier: dict[str, int]
    timeline: tuple[TickRecord, ...]
    wall_s: float


def run(
    out_dir: Path,
    *,
    control_interval_s: float,
    metrics_window_s: float,
    rate_history_s: float,
    scrape_interval_s: float = 1.0,
    seed: int = 0,
) -> SimResult:
    import time

    started = time.monotonic()
    doc = traffic.sim_scenario(
        control_interval_s=control_interval_s, metrics_window_s=metrics_window_s
    )
    path = out_dir / "sim-scenario.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    spec = scenario.load_scenario(path)
    setup = runner.prepare(spec, path)
    workload = runner.build_workload(setup, seed)
    policy = runner.make_policy("tierscale", setup, workload, seed)
    initial = {
        tier.key: t.initial_replicas for t, tier in zip(spec.tiers, setup.tiers, strict=True)
    }
    config = FleetConfig(
        control_interval_s=control_interval_s,
        metrics_window_s=metrics_window_s,
        scrape_interval_s=scrape_interval_s,
        rate_history_s=rate_history_s,
        initial_replicas_by_pool=initial,
    )
    fleet = Fleet(
        setup.fleet_tiers,
        workload,
        policy,
        runner.backend_factory(setup),
        config,
        np.random.default_rng([seed, 7]),
        None,
    )
    fleet_run = fleet.run()
    score = scoring.score_run(fleet_run, setup.tiers, "tierscale", seed, spec.criterion)
    return SimResult(
        gpu_hours=score.gpu_hours,
        attainment_by_tier={k.split("/")[-1]: s.attainment_frac for k, s in score.by_tier.items()},
        requests_by_tier={k.split("/")[-1]: s.requests for k, s in score.by_tier.items()},
        timeline=fleet_run.timeline,
        wall_s=time.monotonic() - started,
    )


def replicas_by_tier(result: SimResult) -> dict[str, tuple[list[float], list[int], list[int]]]:
    """tier -> (minutes, requested replicas, ready replicas)."""
    out: dict[str, tuple[list[float], list[int], list[int]]] = {}
    for rec in result.timeline:
        for pool, current in rec.current_by_pool.items():
            tier = pool.split("/")[-1]
            minutes, cur, ready = out.setdefault(tier, ([], [], []))
            minutes.append(rec.t_s / 60.0)
            cur.append(current)
            ready.append(rec.ready_by_pool.get(pool, 0))
    return out


def as_json(result: SimResult) -> dict[str, Any]:
    return {
        "gpu_hours": round(result.gpu_hours, 4),
        "attainment_by_tier": {k: round(v, 4) for k, v in result.attainment_by_tier.items()},
        "requests_by_tier": result.requests_by_tier,
        "wall_s": round(result.wall_s, 1),
    }
