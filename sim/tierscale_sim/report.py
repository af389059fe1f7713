"""Human-facing outputs of a benchmark: terminal table, markdown table, PNG plots.

Every cell shows the mean over seeds and, when there are several seeds, the spread
(min..max) so a difference smaller than the noise is visible as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from rich.table import Table  # noqa: E402

from tierscale_sim.bench import BenchResult, PolicySummary, Stat  # noqa: E402
from tierscale_sim.fleet import TickRecord  # noqa: E402
from tierscale_sim.runner import PolicyRun  # noqa: E402


def _pct(s: Stat, spread: bool) -> str:
    text = f"{100 * s.mean:.2f}%"
    if spread and s.hi - s.lo > 0:
        text += f" ({100 * s.lo:.1f}..{100 * s.hi:.1f})"
    return text


def _num(s: Stat | None, spread: bool, fmt: str = "{:.2f}") -> str:
    if s is None:
        return "-"
    text = fmt.format(s.mean)
    if spread and s.hi - s.lo > 0:
        text += f" ({fmt.format(s.lo)}..{fmt.format(s.hi)})"
    return text


def _rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    spread = len(result.seeds) > 1
    first = next(iter(result.summaries.values()), None)
    tier_keys = list(first.attainment_by_tier) if first else []
    header = ["policy"] + [f"{k.split('/')[-1]} attain." for k in tier_keys]
    header += ["all tiers met", "goodput req/s", "GPU-h", "vs oracle", "scale events"]
    swept = any(p.sweep_goodput_rps for p in result.summaries.values())
    if swept:
        header.append("sweep goodput req/s")
    rows: list[list[str]] = []
    for name in result.policies:
        p: PolicySummary | None = result.summaries.get(name)
        if p is None:
            continue
        row = [name] + [_pct(p.attainment_by_tier[k], spread) for k in tier_keys]
        row += [
            f"{100 * p.tiers_met_frac:.0f}% of seeds",
            _num(p.goodput_rps, spread),
            _num(p.gpu_hours, spread),
            _num(p.gpu_hours_vs_oracle, spread, "{:.2f}x"),
            _num(p.scale_events, spread, "{:.0f}"),
        ]
        if swept:
            row.append(_num(p.sweep_goodput_rps, spread))
        rows.append(row)
    return header, rows


def rich_table(result: BenchResult) -> Table:
    header, rows = _rows(result)
    table = Table(
        title=f"{result.scenario}: {len(result.seeds)} seed(s), load x{result.base_multiplier:g}"
    )
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def markdown_table(result: BenchResult) -> str:
    header, rows = _rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_report(result: BenchResult, plots: Sequence[Path]) -> str:
    parts = [f"# {result.scenario}\n", result.description + "\n" if result.description else ""]
    parts.append(
        f"Seeds {list(result.seeds)}; load multipliers {list(result.multipliers)}; "
        "cells: mean (min..max over seeds).\n"
    )
    parts.append(markdown_table(result))
    details = [
        r for r in result.runs if r.detail and r.score.rate_multiplier == result.base_multiplier
    ]
    if details:
        parts.append("\n| policy | seed | detail |\n|---|---|---|")
        parts += [f"| {r.score.policy} | {r.score.seed} | {r.detail} |" for r in details]
        parts.append("")
    parts += [f"\n![{p.stem}]({p.name})" for p in plots]
    return "\n".join(parts) + "\n"


def write_plots(result: BenchResult, out_dir: Path) -> list[Path]:
    paths = [_plot_gpu_hours(result, out_dir / "gpu_hours.png")]
    paths.append(_plot_timelines(result, out_dir / "replicas_over_time.png"))
    first_seed = [
        r
        for r in result.runs
        if r.score.seed == result.seeds[0] and r.score.rate_multiplier == result.base_multiplier
    ]
    for run in first_seed:
        if any(rec.explanation_by_tier for rec in run.timeline):
            name = f"decisions_{run.score.policy}.png"
            paths.append(_plot_decisions(result, run, out_dir / name))
    if len(result.multipliers) > 1:
        paths.append(_plot_sweep(result, out_dir / "attainment_vs_load.png"))
    return paths


def _plot_gpu_hours(result: BenchResult, path: Path) -> Path:
    names = [n for n in result.policies if n in result.summaries]
    means = [result.summaries[n].gpu_hours.mean for n in names]
    lo = [m - result.summaries[n].gpu_hours.lo for n, m in zip(names, means, strict=True)]
    hi = [result.summaries[n].gpu_hours.hi - m for n, m in zip(names, means, strict=True)]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(names, means, yerr=[lo, hi], capsize=3, color="#4c72b0")
    ax.set_ylabel("GPU-hours")
    ax.set_title(f"{result.scenario}: GPU-hours (cold starts included)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


REASON_COLORS = {
    "ForecastUp": "#2ca02c",
    "ScaleUp": "#2ca02c",
    "ScaleDown": "#1f77b4",
    "Stabilized": "#aec7e8",
    "Spillover": "#17becf",
    "SLOBreach": "#d62728",
    "BudgetLimited": "#ff7f0e",
    "AtMaxReplicas": "#9467bd",
    "HoldStaleMetrics": "#7f7f7f",
    "Conflict": "#8c564b",
    "InvalidSpec": "#e377c2",
}
"""Reasons drawn on the timelines (Steady and AtMinReplicas are the quiet background)."""
_SEVERITY = (
    "InvalidSpec",
    "HoldStaleMetrics",
    "SLOBreach",
    "BudgetLimited",
    "AtMaxReplicas",
    "ForecastUp",
    "ScaleDown",
    "Spillover",
    "Stabilized",
    "Conflict",
)


def _tick_reason(rec: TickRecord) -> str | None:
    """The most pressing reason any tier had at this tick (None: all steady)."""
    reasons = {e.reason for e in rec.explanation_by_tier.values()}
    return next((r for r in _SEVERITY if r in reasons), None)


def _plot_timelines(result: BenchResult, path: Path) -> Path:
    seed = result.seeds[0]
    picked = [
        r
        for r in result.runs
        if r.score.seed == seed and r.score.rate_multiplier == result.base_multiplier
    ]
    n = max(len(picked), 1)
    # One y scale for every policy (replicas and demand alike): the rows are compared.
    fig, axes = plt.subplots(
        n, 1, figsize=(8, 1.8 * n + 0.8), sharex=True, sharey=True, squeeze=False
    )
    twins: list[Axes] = []
    seen_reasons: set[str] = set()
    for ax, run in zip(axes[:, 0], picked, strict=False):
        t = [rec.t_s / 60 for rec in run.timeline]
        current = [sum(rec.current_by_pool.values()) for rec in run.timeline]
        ready = [sum(rec.ready_by_pool.values()) for rec in run.timeline]
        demand = [sum(rec.rate_by_tier_rps.values()) for rec in run.timeline]
        ax.step(t, current, where="post", label="replicas (requested)", color="#c44e52")
        ax.step(t, ready, where="post", label="replicas (ready)", color="#55a868")
        ax.set_ylabel(run.score.policy)
        twin = ax.twinx()
        if twins:
            twin.sharey(twins[0])
        twins.append(twin)
        twin.plot(t, demand, color="#8172b2", alpha=0.5, lw=0.8, label="demand req/s")
        twin.set_ylabel("req/s", fontsize=7)
        seen_reasons |= _draw_reasons(ax, run.timeline)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for reason in sorted(seen_reasons):
        handles.append(Line2D([], [], color=REASON_COLORS[reason], marker="|", ls="", ms=8))
        labels.append(reason)
    axes[0, 0].legend(handles, labels, loc="upper left", fontsize=6, ncol=3)
    axes[-1, 0].set_xlabel("minutes")
    fig.suptitle(f"{result.scenario}: replicas and demand over time (seed {seed})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_reasons(ax: Axes, timeline: Sequence[TickRecord]) -> set[str]:
    """Mark every tick at which the policy gave a reason other than Steady (top edge)."""
    seen: set[str] = set()
    for rec in timeline:
        reason = _tick_reason(rec)
        if reason is None:
            continue
        seen.add(reason)
        ax.plot(
            [rec.t_s / 60],
            [1.0],
            marker="|",
            ms=7,
            color=REASON_COLORS[reason],
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
    return seen


def _plot_decisions(result: BenchResult, run: PolicyRun, path: Path) -> Path:
    """One explaining policy, one seed: per tier, what it planned for next to what it
    observed (demand, TTFT and TPOT at the SLO percentile, replicas), reasons on top."""
    ticks = [rec for rec in run.timeline if rec.explanation_by_tier]
    keys = list(dict.fromkeys(k for rec in ticks for k in rec.explanation_by_tier))
    fig, axes = plt.subplots(
        len(keys), 4, figsize=(15, 2.3 * len(keys) + 0.8), sharex=True, squeeze=False
    )
    t = [rec.t_s / 60 for rec in ticks]

    def col(key: str, name: str) -> list[float]:
        vals = [getattr(rec.explanation_by_tier.get(key), name, None) for rec in ticks]
        return [float("nan") if v is None else float(v) for v in vals]

    for row, key in enumerate(keys):
        rate_ax, ttft_ax, tpot_ax, rep_ax = axes[row]
        rate_ax.plot(t, col(key, "observed_rate_rps"), lw=0.9, label="observed")
        rate_ax.plot(t, col(key, "planned_rate_rps"), lw=0.9, ls="--", label="planned for")
        rate_ax.set_ylabel(f"{key.split('/')[-1]}\nreq/s", fontsize=8)
        slo = result.slo_by_tier.get(key)
        for ax, name, idx in ((ttft_ax, "ttft_s", 0), (tpot_ax, "tpot_s", 1)):
            ax.plot(t, col(key, f"observed_{name}"), lw=0.9, label="observed")
            ax.plot(t, col(key, f"predicted_{name}"), lw=0.9, ls="--", label="predicted")
            if slo is not None:
                ax.axhline(slo[idx], color="k", lw=0.6, ls=":", label="SLO")
            ax.set_yscale("log")
        rep_ax.step(t, col(key, "desired_replicas"), where="post", label="desired", color="#c44e52")
        rep_ax.step(
            t,
            [float(rec.ready_by_pool.get(key, 0)) for rec in ticks],
            where="post",
            label="ready",
            color="#55a868",
        )
        _draw_tier_reasons(rep_ax, ticks, key)
    for ax, title in zip(
        axes[0], ("demand", "TTFT (SLO pct.)", "TPOT (SLO pct.)", "replicas"), strict=True
    ):
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("minutes")
    fig.suptitle(
        f"{result.scenario}: {run.score.policy}, planned vs observed (seed {run.score.seed})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _draw_tier_reasons(ax: Axes, ticks: Sequence[TickRecord], key: str) -> None:
    for rec in ticks:
        e = rec.explanation_by_tier.get(key)
        if e is None or e.reason not in REASON_COLORS:
            continue
        ax.plot(
            [rec.t_s / 60],
            [1.0],
            marker="|",
            ms=7,
            color=REASON_COLORS[e.reason],
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )


def _plot_sweep(result: BenchResult, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in result.policies:
        pts: dict[float, list[tuple[float, float]]] = {}
        for r in result.runs:
            if r.score.policy == name:
                pts.setdefault(r.score.rate_multiplier, []).append(
                    (r.score.offered_rps, r.score.attainment_frac)
                )
        xs = sorted(pts)
        if not xs:
            continue
        load = [sum(p[0] for p in pts[x]) / len(pts[x]) for x in xs]
        att = [100 * sum(p[1] for p in pts[x]) / len(pts[x]) for x in xs]
        ax.plot(load, att, marker="o", ms=3, label=name)
    ax.set_xlabel("offered load (req/s)")
    ax.set_ylabel("requests within SLO (%)")
    ax.set_title(f"{result.scenario}: attainment vs load")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
