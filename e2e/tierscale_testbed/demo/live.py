"""The demo's live terminal view: one row per tier, refreshed every second.

It reads only what a person could read too: the operator's decision log (one JSON line per
decision: desired/current/ready replicas, reason, the decision's sentence) and its
`/metrics` (observed and target latency, attainment). Nothing here talks to the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tierscale.loop import telemetry


@dataclass
class DecisionLog:
    """Follows the operator's JSON log from where it was last read."""

    path: Path
    offset: int = 0
    last_by_tier: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: int = 0

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for raw in chunk[:end].splitlines():
            if not raw.startswith(b"{"):
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("message") != "decision":
                continue
            self.decisions += 1
            for key, entry in (line.get("tiers") or {}).items():
                self.last_by_tier[key] = entry


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """metric name -> tier key (`namespace/tier`) -> value, for the per-tier gauges."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith(telemetry.PREFIX) or "{" not in line:
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        parts = dict(
            p.split("=", 1) for p in labels.rstrip("}").replace('"', "").split(",") if "=" in p
        )
        if "tier" in parts and "namespace" in parts:
            try:
                out.setdefault(name, {})[f"{parts['namespace']}/{parts['tier']}"] = float(value)
            except ValueError:
                continue
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def view(
    *,
    title: str,
    phase: str,
    elapsed_s: float,
    total_s: float,
    offered_rps: Mapping[str, float],
    tier_keys: Sequence[str],
    log: DecisionLog,
    metrics: Mapping[str, Mapping[str, float]],
) -> Group:
    table = Table(expand=True, title_justify="left")
    for column, justify in (
        ("tier", "left"),
        ("offered req/s", "right"),
        ("replicas desired / ready", "center"),
        ("TTFT obs / target ms", "right"),
        ("TPOT obs / target ms", "right"),
        ("attainment / target", "right"),
        ("last reason", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    sentences = []
    for key in tier_keys:
        entry = log.last_by_tier.get(key, {})
        name = key.split("/")[-1]

        def m(metric: str, key: str = key) -> float | None:
            return metrics.get(metric, {}).get(key)

        attainment, target = m(telemetry.ATTAINMENT), m(telemetry.ATTAINMENT_TARGET)
        style = ""
        if attainment is not None and target is not None:
            style = "green" if attainment >= target else "red"
        table.add_row(
            name,
            f"{offered_rps.get(name, 0.0):.2f}",
            f"{entry.get('desired', '-')} / {entry.get('ready', '-')}",
            f"{_ms(m(telemetry.OBSERVED_TTFT))} / {_ms(m(telemetry.TARGET_TTFT))}",
            f"{_ms(m(telemetry.OBSERVED_TPOT))} / {_ms(m(telemetry.TARGET_TPOT))}",
            Text(f"{_pct(attainment)} / {_pct(target)}", style=style),
            str(entry.get("reason", "-")),
        )
        if entry.get("message"):
            sentences.append(Text(f"{name}: {entry['message']}", overflow="fold"))
    header = Text.assemble(
        (title, "bold"),
        f"   phase: {phase}   {elapsed_s / 60:4.1f} / {total_s / 60:.1f} min   "
        f"decisions: {log.decisions}",
    )
    return Group(header, table, *sentences)
