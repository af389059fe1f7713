"""Benchmark: how steadily a pool's observed TPOT tells the model's error, mean against p99.

Run: `.venv/bin/python -m bench.tpot_mean_fidelity SCENARIO.yaml [--exact]`. Simulates the
production planner on the scenario (seed 0, one process) with the observation step
(`tierscale.loop.observe`) wrapped: at every decision, for every pool that is steady
(Ready replicas = desired, no queue, requests finished in the window), it divides what
the pool showed by what the planner's model predicts at the pool's per-replica load: the
window's mean TPOT (the histogram's sum / count) by `latency.tpot_mean_s`, and its
SLO-percentile TPOT (read from vLLM's buckets) by `latency.predict`. `--exact` runs the
scenario with the engine exactly the model (its `reality` dropped): ratios near 1 with a
narrow spread are what a calibration can learn from. Prints p10 / p50 / p90 of each ratio
per tier. Numbers are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierscale_sim import runner, scenario
from tierscale_sim.scenario import RealitySpec

from tierscale.domain.metrics import PoolReplicas, PoolSignals, TierTraffic
from tierscale.domain.observations import TierObservation
from tierscale.domain.tiers import Tier
from tierscale.loop import observe
from tierscale_predictor import latency, profiles


@dataclass(frozen=True, slots=True)
class Window:
    """One steady pool's window: observed over predicted, for the mean and the percentile."""

    tier: str
    mean_ratio: float
    tail_ratio: float | None


def ratios(
    tier: Tier, signals: PoolSignals, replicas: PoolReplicas, obs: TierObservation, model: Any
) -> Window | None:
    """The window's ratios, or None where the pool is not steady or shows no TPOT."""
    ready, rate = replicas.ready, signals.finished_rate_rps
    if not ready or ready != replicas.current or not rate or (signals.waiting_requests or 0) >= 1:
        return None
    if obs.tpot_mean_s is None or obs.prompt_tokens_mean is None or obs.output_tokens_mean is None:
        return None
    shape = latency.WorkloadShape(
        obs.prompt_tokens_mean, obs.output_tokens_mean, obs.prompt_tokens_p99, obs.output_tokens_p99
    )
    per_replica = rate / ready
    mean_s = latency.tpot_mean_s(model, per_replica, shape)
    if not 0.0 < mean_s < latency.UNSTABLE_S:
        return None
    tail_s = latency.predict(model, per_replica, shape, tier.slo.percentile).tpot_s
    tail = obs.tpot_s / tail_s if obs.tpot_s and 0.0 < tail_s < latency.UNSTABLE_S else None
    return Window(tier.key, obs.tpot_mean_s / mean_s, tail)


@contextmanager
def recording(windows: list[Window], model: Any) -> Iterator[None]:
    """Wrap `observe._observe_tier` to append every steady window's ratios."""
    original = observe._observe_tier

    def wrapped(
        tier: Tier, traffic: TierTraffic, signals: PoolSignals | None, replicas: PoolReplicas
    ) -> TierObservation:
        obs = original(tier, traffic, signals, replicas)
        if signals is not None:
            window = ratios(tier, signals, replicas, obs, model)
            if window is not None:
                windows.append(window)
        return obs

    observe._observe_tier = wrapped  # type: ignore[assignment]
    try:
        yield
    finally:
        observe._observe_tier = original  # type: ignore[assignment]


def _spread(values: Sequence[float]) -> str:
    ordered = sorted(values)
    n = len(ordered)
    return f"{ordered[n // 10]:.3f} / {statistics.median(ordered):.3f} / {ordered[9 * n // 10]:.3f}"


def summary(windows: Sequence[Window]) -> list[str]:
    """One row per tier: windows, and p10 / p50 / p90 of each ratio."""
    lines = [
        "| tier | windows | mean TPOT observed / predicted: p10 / p50 / p90"
        " | SLO-percentile TPOT observed / predicted: p10 / p50 / p90 |",
        "|---|---|---|---|",
    ]
    by_tier: dict[str, list[Window]] = {}
    for w in windows:
        by_tier.setdefault(w.tier, []).append(w)
    for tier, rows in sorted(by_tier.items()):
        tails = [w.tail_ratio for w in rows if w.tail_ratio is not None]
        lines.append(
            f"| {tier} | {len(rows)} | {_spread([w.mean_ratio for w in rows])}"
            f" | {_spread(tails) if tails else '-'} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--exact", action="store_true", help="the engine exactly the model")
    args = parser.parse_args(argv)
    spec = scenario.load_scenario(args.scenario)
    if args.exact:
        spec = spec.model_copy(
            update={
                "models": {
                    name: m.model_copy(update={"reality": RealitySpec()})
                    for name, m in spec.models.items()
                }
            }
        )
    profile_names = {m.profile for m in spec.models.values()}
    if len(profile_names) != 1:
        raise SystemExit("one served model's profile per scenario, please")
    model = latency.LatencyModel.from_profile(profiles.load_profile(profile_names.pop()))
    setup = runner.prepare(spec, args.scenario)
    workload = runner.build_workload(setup, 0, 1.0)
    windows: list[Window] = []
    with recording(windows, model):
        runner.simulate_policy(setup, "tierscale", workload, 0)
    print(f"{spec.name}{' (engine exactly the model)' if args.exact else ''}, seed 0")
    print("\n".join(summary(windows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
