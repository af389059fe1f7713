"""A backtest's result as numbers per tier, a timeline CSV, JSON and plots.

GPU-hours: each tick's replicas x GPUs per replica, held for one control interval
(`tierscale`: the desired replicas of each decision; `actual`: `spec.replicas` as
Prometheus saw it, ticks where it was not scraped left out of both sums, so the two are
compared over the same ticks).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tierscale.backtest.engine import BacktestResult, TierTick
from tierscale.domain.reasons import Reason

HOLD_REASONS = frozenset({Reason.HOLD_STALE_METRICS.value, Reason.CONFLICT.value})


@dataclass(frozen=True, slots=True)
class TierSummary:
    tier_key: str
    ticks: int
    desired_mean: float | None
    desired_max: int | None
    actual_mean: float | None
    actual_max: float | None
    gpu_hours_tierscale: float
    gpu_hours_actual: float
    compared_ticks: int
    """Ticks where both the decision and the actual replicas are known."""
    ticks_predicting_miss: int
    ticks_observed_miss: int
    ticks_spilling: int
    spill_out_rps_mean: float | None
    """Mean planned spill over the ticks that spill."""
    ticks_held: int
    reasons: dict[str, int]


def summarize(result: BacktestResult) -> list[TierSummary]:
    by_tier: dict[str, list[TierTick]] = {}
    for tick in result.ticks:
        by_tier.setdefault(tick.tier_key, []).append(tick)
    hours = result.interval_s / 3600.0
    out = []
    for tier in result.tiers:
        ticks = by_tier.get(tier.key, [])
        desired = [t.desired_replicas for t in ticks if t.desired_replicas is not None]
        actual = [t.actual_replicas for t in ticks if t.actual_replicas is not None]
        both = [
            t for t in ticks if t.desired_replicas is not None and t.actual_replicas is not None
        ]
        spilling = [t.spill_out_rps for t in ticks if t.spill_out_rps > 1e-9]
        out.append(
            TierSummary(
                tier_key=tier.key,
                ticks=len(ticks),
                desired_mean=_mean(desired),
                desired_max=max(desired) if desired else None,
                actual_mean=_mean(actual),
                actual_max=max(actual) if actual else None,
                gpu_hours_tierscale=sum(
                    (t.desired_replicas or 0) * t.gpus_per_replica * hours for t in both
                ),
                gpu_hours_actual=sum(
                    (t.actual_replicas or 0.0) * t.gpus_per_replica * hours for t in both
                ),
                compared_ticks=len(both),
                ticks_predicting_miss=sum(t.predicts_miss for t in ticks),
                ticks_observed_miss=sum(t.observed_miss for t in ticks),
                ticks_spilling=len(spilling),
                spill_out_rps_mean=_mean(spilling),
                ticks_held=sum(t.reason in HOLD_REASONS for t in ticks),
                reasons=dict(Counter(t.reason for t in ticks).most_common()),
            )
        )
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def write_timeline(result: BacktestResult, path: Path) -> None:
    fields = [f for f in TierTick.__dataclass_fields__] + ["predicts_miss", "observed_miss"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for tick in result.ticks:
            row = asdict(tick) | {
                "predicts_miss": tick.predicts_miss,
                "observed_miss": tick.observed_miss,
            }
            writer.writerow(row)


def to_json(result: BacktestResult, summaries: Sequence[TierSummary]) -> dict[str, Any]:
    return {
        "start_s": result.start_s,
        "end_s": result.end_s,
        "interval_s": result.interval_s,
        "replica_source": result.replica_source,
        "ticks": len({t.at_s for t in result.ticks}),
        "range_requests": result.range_requests,
        "prometheus_errors": result.prometheus_errors,
        "last_errors": result.last_errors,
        "wall_s": round(result.wall_s, 3),
        "tiers": [asdict(s) for s in summaries],
    }


def write_json(result: BacktestResult, summaries: Sequence[TierSummary], path: Path) -> None:
    path.write_text(json.dumps(to_json(result, summaries), indent=2) + "\n", encoding="utf-8")


def plot(result: BacktestResult, summaries: Sequence[TierSummary], out_dir: Path) -> list[Path]:
    """replicas.png, latency.png, gpu_hours.png; panels compared share their y-axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [t.key for t in result.tiers]
    by_tier: dict[str, list[TierTick]] = {k: [] for k in keys}
    for tick in result.ticks:
        by_tier.setdefault(tick.tier_key, []).append(tick)
    paths = []

    fig, axes = plt.subplots(
        len(keys), 1, figsize=(10, 2.6 * len(keys) + 0.6), sharex=True, sharey=True, squeeze=False
    )
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ticks = by_tier[key]
        minutes = [(t.at_s - result.start_s) / 60.0 for t in ticks]
        ax.step(
            minutes,
            [_nan(t.desired_replicas) for t in ticks],
            where="post",
            label="tierscale (desired)",
            color="tab:blue",
            linewidth=2,
            zorder=3,
        )
        ax.step(
            minutes,
            [_nan(t.actual_replicas) for t in ticks],
            where="post",
            label="actual (spec)",
            color="tab:gray",
        )
        ax.step(
            minutes,
            [_nan(t.ready_replicas) for t in ticks],
            where="post",
            label="actual (ready)",
            color="tab:gray",
            linestyle=":",
        )
        ax.set_ylabel("replicas")
        ax.set_title(key, fontsize=10, loc="left")
        ax.set_ylim(bottom=0)
        rate = ax.twinx()
        rate.plot(
            minutes,
            [_nan(t.observed_rate_rps) for t in ticks],
            color="tab:orange",
            alpha=0.6,
            label="demand (req/s)",
        )
        rate.set_ylabel("req/s", color="tab:orange")
        rate.set_ylim(bottom=0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    demand_handles, demand_labels = rate.get_legend_handles_labels()
    fig.legend(
        [*handles, *demand_handles],
        [*labels, *demand_labels],
        loc="upper right",
        ncol=4,
        fontsize=8,
    )
    axes[-1, 0].set_xlabel("minutes since start")
    fig.suptitle("replicas per tier: tierscale (dry-run) vs what ran", x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    paths.append(_save(fig, out_dir / "replicas.png"))

    fig, axes = plt.subplots(
        len(keys), 2, figsize=(11, 2.4 * len(keys) + 0.6), sharex=True, squeeze=False
    )
    for row, key in enumerate(keys):
        ticks = by_tier[key]
        minutes = [(t.at_s - result.start_s) / 60.0 for t in ticks]
        for col, (what, observed, predicted, target) in enumerate(
            (
                ("TTFT", "observed_ttft_s", "predicted_ttft_s", "slo_ttft_s"),
                ("TPOT", "observed_tpot_s", "predicted_tpot_s", "slo_tpot_s"),
            )
        ):
            ax = axes[row, col]
            ax.plot(minutes, [_nan(getattr(t, observed)) for t in ticks], label="observed")
            ax.plot(
                minutes,
                [_nan(getattr(t, predicted)) for t in ticks],
                label="predicted",
                linestyle="--",
            )
            ax.plot(minutes, [getattr(t, target) for t in ticks], label="SLO", color="tab:red")
            ax.set_title(f"{key} {what} (s)", fontsize=9, loc="left")
            ax.set_ylim(bottom=0)
    axes[0, 0].legend(fontsize=8)
    for col in range(2):
        axes[-1, col].set_xlabel("minutes since start")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "latency.png"))

    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(keys) + 2), 3.6))
    xs = range(len(summaries))
    ax.bar(
        [x - 0.2 for x in xs],
        [s.gpu_hours_tierscale for s in summaries],
        width=0.4,
        label="tierscale",
        color="tab:blue",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [s.gpu_hours_actual for s in summaries],
        width=0.4,
        label="actual",
        color="tab:gray",
    )
    ax.set_xticks(list(xs), [s.tier_key for s in summaries], fontsize=8, rotation=15)
    ax.set_ylabel("GPU-hours")
    ax.set_title("GPU-hours over the backtest", loc="left")
    ax.legend()
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "gpu_hours.png"))
    return paths


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
