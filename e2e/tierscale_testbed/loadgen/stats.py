"""Per-tier attainment and latency percentiles from client-side results.

Attainment counts every request sent: a failed or cut-off request missed its SLO, so
errors lower attainment instead of vanishing from it. Percentiles are over the requests
that produced the measured quantity (numpy's default linear interpolation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tierscale_testbed.loadgen.client import RequestResult

PERCENTILES = (50.0, 90.0, 99.0)


@dataclass(frozen=True, slots=True)
class Slo:
    ttft_s: float
    tpot_s: float


@dataclass(frozen=True, slots=True)
class TierSummary:
    tier: str
    sent: int
    ok: int
    errors: int
    attainment_frac: float | None  # None when the tier has no SLO given
    ttft_s_mean: float | None  # None when no request produced a token
    ttft_s_by_pct: dict[str, float]  # "p50" -> seconds
    tpot_s_by_pct: dict[str, float]
    e2e_s_by_pct: dict[str, float]


def percentiles(values: Sequence[float], pcts: Sequence[float] = PERCENTILES) -> dict[str, float]:
    if not values:
        return {}
    got = np.percentile(np.asarray(values, dtype=float), list(pcts))
    return {f"p{p:g}": float(v) for p, v in zip(pcts, got, strict=True)}


def meets(result: RequestResult, slo: Slo) -> bool:
    """Both SLOs held; a one-token answer has no TPOT and meets that part trivially."""
    if not result.ok or result.ttft_s is None:
        return False
    tpot_ok = result.tpot_s is None or result.tpot_s <= slo.tpot_s
    return result.ttft_s <= slo.ttft_s and tpot_ok


def summarize(
    results: Iterable[RequestResult], slo_by_tier: Mapping[str, Slo]
) -> list[TierSummary]:
    by_tier: dict[str, list[RequestResult]] = {}
    for r in results:
        by_tier.setdefault(r.tier, []).append(r)
    out = []
    for tier in sorted(by_tier):
        rs = by_tier[tier]
        slo = slo_by_tier.get(tier)
        ok = [r for r in rs if r.ok]
        ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
        out.append(
            TierSummary(
                tier=tier,
                sent=len(rs),
                ok=len(ok),
                errors=len(rs) - len(ok),
                attainment_frac=None if slo is None else sum(meets(r, slo) for r in rs) / len(rs),
                ttft_s_mean=float(np.mean(ttfts)) if ttfts else None,
                ttft_s_by_pct=percentiles(ttfts),
                tpot_s_by_pct=percentiles([r.tpot_s for r in ok if r.tpot_s is not None]),
                e2e_s_by_pct=percentiles([r.e2e_s for r in ok if r.e2e_s is not None]),
            )
        )
    return out


def parse_slos(text: str) -> dict[str, Slo]:
    """``"gold=0.5:0.05,silver=2:0.1"`` (TTFT seconds : TPOT seconds) -> per-tier SLOs."""
    out: dict[str, Slo] = {}
    if not text:
        return out
    for part in text.split(","):
        name, _, pair = part.partition("=")
        ttft, _, tpot = pair.partition(":")
        if not name or not ttft or not tpot:
            raise ValueError(f"SLO entry {part!r} is not TIER=TTFT_S:TPOT_S")
        out[name.strip()] = Slo(float(ttft), float(tpot))
    return out


def to_json(summaries: Sequence[TierSummary], **extra: Any) -> dict[str, Any]:
    return {**extra, "tiers": [asdict(s) for s in summaries]}
