"""The demo's results: plots and a summary from Prometheus, the load generators and the
simulator's prediction for the same day.

Everything live is read back from the testbed's Prometheus, which scraped the operator's
`/metrics` every second: replicas desired and ready per tier, observed and predicted
latency against the SLO, attainment, GPU-seconds own and borrowed. What clients saw
(requests sent, how many met both SLO bounds) comes from the load generators' summaries.
Panels that are compared share their y-axis.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierscale.loop import telemetry
from tierscale_testbed.demo import sim_compare


@dataclass(frozen=True, slots=True)
class Window:
    prometheus_url: str
    namespace: str
    start_s: float
    end_s: float
    step_s: float = 2.0


def query_range(w: Window, expr: str) -> dict[str, tuple[list[float], list[float]]]:
    """tier -> (minutes since start, values) of `expr`, which keeps a `tier` label."""
    params = urllib.parse.urlencode(
        {"query": expr, "start": w.start_s, "end": w.end_s, "step": w.step_s}
    )
    with urllib.request.urlopen(f"{w.prometheus_url}/api/v1/query_range?{params}", timeout=30) as r:
        body = json.loads(r.read())
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in body["data"]["result"]:
        tier = row["metric"].get("tier", "all")
        minutes = [(float(t) - w.start_s) / 60.0 for t, _ in row["values"]]
        out[tier] = (minutes, [float(v) for _, v in row["values"]])
    return out


def query(w: Window, expr: str) -> dict[tuple[str, ...], float]:
    params = urllib.parse.urlencode({"query": expr, "time": w.end_s})
    with urllib.request.urlopen(f"{w.prometheus_url}/api/v1/query?{params}", timeout=30) as r:
        body = json.loads(r.read())
    return {
        tuple(row["metric"].get(k, "") for k in ("tier", "source")): float(row["value"][1])
        for row in body["data"]["result"]
    }


def _tier(w: Window, metric: str) -> str:
    return f'max by (tier) ({metric}{{namespace="{w.namespace}"}})'


def gpu_hours(w: Window) -> dict[str, dict[str, float]]:
    """tier -> source (own / borrowed) -> GPU-hours over the run (the operator's counter)."""
    span = max(1, int(w.end_s - w.start_s))
    expr = (
        f"sum by (tier, source) (increase({telemetry.GPU_SECONDS_TOTAL}"
        f'{{namespace="{w.namespace}"}}[{span}s])) / 3600'
    )
    out: dict[str, dict[str, float]] = {}
    for (tier, source), value in query(w, expr).items():
        out.setdefault(tier, {})[source] = value
    return out


Series = dict[str, tuple[list[float], list[float]]]


@dataclass(frozen=True, slots=True)
class LiveData:
    """Everything the plots and the summary need from Prometheus, read before teardown."""

    start_s: float
    end_s: float
    desired: Series
    ready: Series
    demand: Series
    observed_ttft: Series
    predicted_ttft: Series
    target_ttft: Series
    observed_tpot: Series
    predicted_tpot: Series
    target_tpot: Series
    attainment: Series
    attainment_target: Series
    gpu_hours: dict[str, dict[str, float]]


def collect(w: Window) -> LiveData:
    def q(metric: str) -> Series:
        return query_range(w, _tier(w, metric))

    return LiveData(
        w.start_s,
        w.end_s,
        desired=q(telemetry.DESIRED_REPLICAS),
        ready=q(telemetry.READY_REPLICAS),
        demand=q(telemetry.OBSERVED_RATE),
        observed_ttft=q(telemetry.OBSERVED_TTFT),
        predicted_ttft=q(telemetry.PREDICTED_TTFT),
        target_ttft=q(telemetry.TARGET_TTFT),
        observed_tpot=q(telemetry.OBSERVED_TPOT),
        predicted_tpot=q(telemetry.PREDICTED_TPOT),
        target_tpot=q(telemetry.TARGET_TPOT),
        attainment=q(telemetry.ATTAINMENT),
        attainment_target=q(telemetry.ATTAINMENT_TARGET),
        gpu_hours=gpu_hours(w),
    )


def replica_gpu_hours(live: LiveData, gpus_per_replica: int = 1) -> dict[str, float]:
    """tier -> GPU-hours of the replicas the operator asked for (loading ones included),
    integrated over its decisions: the simulator's definition of GPU-hours."""
    out = {}
    for tier, (minutes, values) in live.desired.items():
        total = 0.0
        for i in range(1, len(minutes)):
            total += values[i - 1] * (minutes[i] - minutes[i - 1]) / 60.0
        out[tier] = total * gpus_per_replica
    return out


def client_attainment(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """tier -> requests, errors, attainment as the load generators measured them."""
    out = {}
    for tier, summary in summaries.items():
        row: Mapping[str, Any] = next(
            (r for r in summary.get("tiers", []) if r.get("tier") == tier), {}
        )
        out[tier] = {
            "requests": row.get("sent"),
            "ok": row.get("ok"),
            "errors": row.get("errors"),
            "attainment_frac": row.get("attainment_frac"),
            "ttft_p99_s": (row.get("ttft_s_by_pct") or {}).get("p99"),
            "tpot_p99_s": (row.get("tpot_s_by_pct") or {}).get("p99"),
        }
    return out


def plot(
    live: LiveData,
    tiers: Sequence[str],
    sim: sim_compare.SimResult | None,
    out_dir: Path,
) -> list[Path]:
    """replicas.png, latency.png, attainment.png, gpu_hours.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return [
        _save(plt, _replicas(plt, live, tiers, sim), out_dir / "replicas.png"),
        _save(plt, _latency(plt, live, tiers), out_dir / "latency.png"),
        _save(plt, _attainment(plt, live, tiers), out_dir / "attainment.png"),
        _save(plt, _gpu_hours(plt, live, tiers, sim), out_dir / "gpu_hours.png"),
    ]


def _replicas(
    plt: Any, live: LiveData, tiers: Sequence[str], sim: sim_compare.SimResult | None
) -> Any:
    sim_replicas = sim_compare.replicas_by_tier(sim) if sim else {}
    fig, axes = plt.subplots(
        len(tiers),
        1,
        figsize=(11, 2.5 * len(tiers) + 0.8),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    twins: list[Any] = []
    for ax, tier in zip(axes[:, 0], tiers, strict=True):
        if tier in live.desired:
            ax.step(
                *live.desired[tier], where="post", color="tab:blue", lw=2, label="desired (live)"
            )
        if tier in live.ready:
            ax.step(*live.ready[tier], where="post", color="tab:green", label="ready (live)")
        if tier in sim_replicas:
            minutes, current, _ = sim_replicas[tier]
            ax.step(
                minutes,
                current,
                where="post",
                color="tab:gray",
                ls="--",
                label="simulator (requested)",
            )
        ax.set_ylabel(f"{tier}\nreplicas")
        ax.set_ylim(bottom=0)
        twin = ax.twinx()
        if twins:
            twin.sharey(twins[0])
        twins.append(twin)
        if tier in live.demand:
            twin.plot(*live.demand[tier], color="tab:orange", alpha=0.6, lw=1, label="demand")
        twin.set_ylabel("req/s", color="tab:orange", fontsize=8)
        twin.set_ylim(bottom=0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    more_handles, more_labels = twins[0].get_legend_handles_labels()
    fig.legend(
        [*handles, *more_handles], [*labels, *more_labels], loc="upper right", ncol=4, fontsize=8
    )
    axes[-1, 0].set_xlabel("minutes")
    fig.suptitle("replicas per tier with demand: live operator vs simulator", x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def _latency(plt: Any, live: LiveData, tiers: Sequence[str]) -> Any:
    fig, axes = plt.subplots(
        len(tiers), 2, figsize=(12, 2.3 * len(tiers) + 0.8), sharex=True, squeeze=False
    )
    columns = (
        ("TTFT", live.observed_ttft, live.predicted_ttft, live.target_ttft),
        ("TPOT", live.observed_tpot, live.predicted_tpot, live.target_tpot),
    )
    for col, (what, observed, predicted, targets) in enumerate(columns):
        for row, tier in enumerate(tiers):
            ax = axes[row, col]
            for series, label, style in (
                (observed, "observed", {"color": "tab:blue"}),
                (predicted, "predicted", {"color": "tab:purple", "ls": "--"}),
                (targets, "SLO", {"color": "tab:red"}),
            ):
                if tier in series:
                    ax.plot(*series[tier], label=label, lw=1, **style)
            ax.set_title(f"{tier} {what} at the SLO percentile (s)", fontsize=9, loc="left")
            ax.set_ylim(bottom=0)
    axes[0, 0].legend(fontsize=8)
    for col in range(2):
        axes[-1, col].set_xlabel("minutes")
    fig.tight_layout()
    return fig


def _attainment(plt: Any, live: LiveData, tiers: Sequence[str]) -> Any:
    fig, axes = plt.subplots(1, len(tiers), figsize=(12, 3.2), sharey=True, squeeze=False)
    for ax, tier in zip(axes[0], tiers, strict=True):
        if tier in live.attainment:
            ax.plot(*live.attainment[tier], lw=1, label="observed (pool, window)")
        if tier in live.attainment_target:
            ax.plot(*live.attainment_target[tier], color="tab:red", lw=1, label="target")
        ax.set_title(tier, fontsize=9, loc="left")
        ax.set_xlabel("minutes")
        ax.set_ylim(0, 1.02)
    axes[0, 0].set_ylabel("share within SLO")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle(
        "SLO attainment per tier (operator's estimate from vLLM histograms)", x=0.01, ha="left"
    )
    fig.tight_layout()
    return fig


def _gpu_hours(
    plt: Any, live: LiveData, tiers: Sequence[str], sim: sim_compare.SimResult | None
) -> Any:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    own = [live.gpu_hours.get(t, {}).get("own", 0.0) for t in tiers]
    borrowed = [live.gpu_hours.get(t, {}).get("borrowed", 0.0) for t in tiers]
    ax.bar(tiers, own, color="tab:blue", label="own pool")
    ax.bar(tiers, borrowed, bottom=own, color="tab:cyan", label="borrowed (spill)")
    ax.set_ylabel("GPU-hours")
    total = sum(own) + sum(borrowed)
    sim_text = f"; simulator {sim.gpu_hours:.3f}" if sim else ""
    ax.set_title(f"GPU-hours by tier: live total {total:.3f}{sim_text}", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary(
    live: LiveData,
    tiers: Sequence[str],
    clients: Mapping[str, Mapping[str, Any]],
    sim: sim_compare.SimResult | None,
    extra: Mapping[str, Any],
) -> tuple[dict[str, Any], str]:
    """(summary.json document, summary.md text)."""
    hours = live.gpu_hours
    peak = {tier: max(values) if values else 0.0 for tier, (_, values) in live.desired.items()}
    doc: dict[str, Any] = {
        **extra,
        "live": {
            tier: {
                **clients.get(tier, {}),
                "gpu_hours_replicas": round(replica_gpu_hours(live).get(tier, 0.0), 4),
                "gpu_hours_own": round(hours.get(tier, {}).get("own", 0.0), 4),
                "gpu_hours_borrowed": round(hours.get(tier, {}).get("borrowed", 0.0), 4),
                "peak_desired_replicas": peak.get(tier),
            }
            for tier in tiers
        },
        "simulator": sim_compare.as_json(sim) if sim else None,
    }
    lines = [
        "# tierscale live demo: summary",
        "",
        f"{extra.get('description', '')}",
        "",
        "| tier | requests | client attainment | simulator attainment | GPU-h (replicas) "
        "| GPU-h billed own / borrowed | peak replicas |",
        "|---|---|---|---|---|---|---|",
    ]
    for tier in tiers:
        row = doc["live"][tier]
        sim_att = sim.attainment_by_tier.get(tier) if sim else None
        lines.append(
            f"| {tier} | {row.get('requests')} | {_pct(row.get('attainment_frac'))} | "
            f"{_pct(sim_att)} | {row['gpu_hours_replicas']:.3f} | "
            f"{row['gpu_hours_own']:.3f} / {row['gpu_hours_borrowed']:.3f} | "
            f"{_num(row.get('peak_desired_replicas'))} |"
        )
    live_total = sum(doc["live"][t]["gpu_hours_replicas"] for t in tiers)
    lines += [
        "",
        f"GPU-hours of the replicas asked for (loading ones included): live {live_total:.3f}"
        + (f", simulator {sim.gpu_hours:.3f} (same traffic, tiers and policy)" if sim else "")
        + ". Billed own / borrowed is the operator's attribution of planned GPUs to the "
        "tiers whose traffic they serve (tierscale_tier_gpu_seconds_total).",
        "",
        *(f"- {k}: {v}" for k, v in extra.items() if k != "description"),
        "",
        "Plots: replicas.png, latency.png, attainment.png, gpu_hours.png; dashboard previews "
        "in dashboards/.",
    ]
    return doc, "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{100 * value:.1f}%")
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
