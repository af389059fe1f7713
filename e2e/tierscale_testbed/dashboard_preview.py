"""Run a Grafana dashboard's queries against a Prometheus and draw what it would show.

No Grafana server runs here, so the shipped dashboard JSON (`charts/tierscale/dashboards/`)
is read back as Grafana would: each panel's targets, with the template variables set to
"All" and Grafana's `$__rate_interval` / `$__range` replaced by windows of the run. Range
targets become Prometheus range queries over the run, instant targets one query at its
end. `render` lays the panels out on Grafana's 24-column grid with matplotlib (time
series as lines, stats as big numbers, bar gauges as bars, tables as text): a preview of
the dashboard, for the docs and the demo. `e2e/tests/test_dashboards.py` requires every
panel's query to return data after a closed-loop run.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierscale.dashboards.spec import SUBSTITUTIONS

_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Target:
    expr: str
    legend: str
    instant: bool


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    kind: str
    unit: str
    grid: tuple[int, int, int, int]
    """(x, y, w, h) on Grafana's 24-column grid."""
    targets: tuple[Target, ...]


@dataclass
class Series:
    name: str
    times_s: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class PanelResult:
    panel: Panel
    queries: list[str]
    series: list[Series]

    @property
    def has_data(self) -> bool:
        return any(any(math.isfinite(v) for v in s.values) for s in self.series)


def load(path: Path) -> tuple[str, list[Panel]]:
    doc = json.loads(path.read_text())
    panels = []
    for p in doc["panels"]:
        grid = p["gridPos"]
        targets = tuple(
            Target(t["expr"], t.get("legendFormat", ""), bool(t.get("instant")))
            for t in p.get("targets", [])
        )
        unit = (p.get("fieldConfig", {}).get("defaults") or {}).get("unit", "short")
        panels.append(
            Panel(
                p["title"], p["type"], unit, (grid["x"], grid["y"], grid["w"], grid["h"]), targets
            )
        )
    return doc["title"], panels


def substitute(expr: str, rate_window_s: float, range_s: float) -> str:
    """The query Grafana would send with every variable at "All"."""
    for name, value in SUBSTITUTIONS.items():
        expr = expr.replace(name, value)
    expr = expr.replace("$__rate_interval", f"{int(rate_window_s)}s")
    return expr.replace("$__range", f"{max(1, int(range_s))}s")


def _get(url: str, path: str, params: Mapping[str, str]) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=30) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body}")
    return body["data"]["result"]


def _name(metric: Mapping[str, str], legend: str) -> str:
    if legend:
        return _LEGEND.sub(lambda m: metric.get(m.group(1), ""), legend).strip()
    return ",".join(f"{k}={v}" for k, v in sorted(metric.items())) or "value"


def run(
    prometheus_url: str,
    panels: Sequence[Panel],
    start_s: float,
    end_s: float,
    *,
    step_s: float = 5.0,
    rate_window_s: float = 30.0,
) -> list[PanelResult]:
    """Every panel's targets over [start_s, end_s]."""
    out = []
    for panel in panels:
        result = PanelResult(panel, [], [])
        for target in panel.targets:
            expr = substitute(target.expr, rate_window_s, end_s - start_s)
            result.queries.append(expr)
            if target.instant:
                rows = _get(prometheus_url, "/api/v1/query", {"query": expr, "time": f"{end_s}"})
                for row in rows:
                    at, value = row["value"]
                    result.series.append(
                        Series(_name(row["metric"], target.legend), [float(at)], [float(value)])
                    )
            else:
                params = {
                    "query": expr,
                    "start": f"{start_s}",
                    "end": f"{end_s}",
                    "step": f"{step_s}",
                }
                for row in _get(prometheus_url, "/api/v1/query_range", params):
                    series = Series(_name(row["metric"], target.legend))
                    for at, value in row["values"]:
                        series.times_s.append(float(at))
                        series.values.append(float(value))
                    result.series.append(series)
        out.append(result)
    return out


_UNIT_LABEL = {"s": "s", "reqps": "req/s", "percentunit": "", "h": "h", "short": ""}


def _fmt(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "-"
    if unit == "percentunit":
        return f"{100 * value:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    suffix = {"reqps": " req/s", "h": " h"}.get(unit, "")
    return f"{value:.3g}{suffix}"


def render(title: str, results: Sequence[PanelResult], start_s: float, path: Path) -> Path:
    """One PNG laid out like the dashboard (see module doc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(r.panel.grid[1] + r.panel.grid[3] for r in results)
    fig = plt.figure(figsize=(16, rows * 0.5 + 0.8))
    grid = fig.add_gridspec(rows, 24, hspace=6.0, wspace=1.6)
    for result in results:
        x, y, w, h = result.panel.grid
        ax = fig.add_subplot(grid[y : y + h, x : x + w])
        _draw(ax, result, start_s)
    fig.suptitle(f"{title} (preview from Prometheus query results)", x=0.01, ha="left")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _draw(ax: Any, result: PanelResult, start_s: float) -> None:
    panel = result.panel
    ax.set_title(panel.title, fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    if not result.has_data:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if panel.kind == "stat":
        value = next(v for s in result.series for v in reversed(s.values) if math.isfinite(v))
        ax.text(
            0.5,
            0.45,
            _fmt(value, panel.unit),
            ha="center",
            va="center",
            fontsize=22,
            transform=ax.transAxes,
            color="tab:green",
        )
        ax.set_xticks([])
        ax.set_yticks([])
    elif panel.kind == "bargauge":
        names = [s.name for s in result.series]
        values = [s.values[-1] for s in result.series]
        ax.barh(names, values, color="tab:blue")
        ax.set_xlabel(_UNIT_LABEL.get(panel.unit, panel.unit), fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
    elif panel.kind == "table":
        ax.axis("off")
        lines = [f"{s.name}: {_fmt(s.values[-1], panel.unit)}" for s in result.series]
        ax.text(
            0,
            1,
            "\n".join(lines[:12]),
            va="top",
            fontsize=7,
            family="monospace",
            transform=ax.transAxes,
        )
    else:
        for s in result.series:
            minutes = [(t - start_s) / 60 for t in s.times_s]
            ax.plot(minutes, s.values, lw=1, label=s.name)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(_UNIT_LABEL.get(panel.unit, panel.unit), fontsize=7)
        ax.set_xlabel("minutes", fontsize=7)
        if len(result.series) <= 8:
            ax.legend(fontsize=6, loc="upper left")
