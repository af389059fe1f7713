"""Human and machine renderings of a load run's per-tier summary."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from tierscale_testbed.loadgen.stats import TierSummary


def _ms(by_pct: dict[str, float], key: str) -> str:
    return f"{by_pct[key] * 1000:.0f}" if key in by_pct else "-"


def table(summaries: Sequence[TierSummary], *, title: str) -> Table:
    t = Table(title=title)
    for col in ("tier", "sent", "ok", "errors", "attainment"):
        t.add_column(col, justify="right")
    for metric in ("TTFT", "TPOT"):
        for p in ("p50", "p90", "p99"):
            t.add_column(f"{metric} {p} ms", justify="right")
    for s in summaries:
        attain = "-" if s.attainment_frac is None else f"{s.attainment_frac:.1%}"
        t.add_row(
            s.tier,
            str(s.sent),
            str(s.ok),
            str(s.errors),
            attain,
            *(_ms(s.ttft_s_by_pct, p) for p in ("p50", "p90", "p99")),
            *(_ms(s.tpot_s_by_pct, p) for p in ("p50", "p90", "p99")),
        )
    return t


def print_table(summaries: Sequence[TierSummary], *, title: str) -> None:
    # A pipe gets 80 columns by default, which truncates the table in logs and CI output.
    Console(width=160).print(table(summaries, title=title))
