"""Attainment and percentiles: failures count as misses, SLO edges are inclusive."""

from __future__ import annotations

import pytest
from tierscale_testbed.loadgen import client, stats
from tierscale_testbed.loadgen.client import RequestResult


def _ok(tier: str, ttft_s: float, tpot_s: float | None) -> RequestResult:
    return RequestResult(0, tier, 200, True, 10, ttft_s, tpot_s, ttft_s + 1.0)


def test_attainment_counts_failures_as_misses_and_edges_as_met() -> None:
    results = [
        _ok("gold", 0.5, 0.05),  # exactly on both edges: met
        _ok("gold", 0.6, 0.01),  # TTFT miss
        _ok("gold", 0.1, 0.06),  # TPOT miss
        RequestResult(3, "gold", 503, False, 0, None, None, None, "overflow"),
    ]
    (summary,) = stats.summarize(results, {"gold": stats.Slo(0.5, 0.05)})
    assert summary.attainment_frac == pytest.approx(0.25)
    assert (summary.sent, summary.ok, summary.errors) == (4, 3, 1)


def test_a_tier_without_slo_has_no_attainment_but_has_percentiles() -> None:
    (summary,) = stats.summarize([_ok("x", 1.0, None), _ok("x", 3.0, None)], {})
    assert summary.attainment_frac is None
    assert summary.ttft_s_by_pct["p50"] == pytest.approx(2.0)
    assert summary.ttft_s_mean == pytest.approx(2.0)
    assert summary.tpot_s_by_pct == {}


def test_percentiles_interpolate_linearly() -> None:
    got = stats.percentiles([float(v) for v in range(1, 101)])
    assert got["p50"] == pytest.approx(50.5)
    assert got["p99"] == pytest.approx(99.01)
    assert stats.percentiles([]) == {}


def test_slo_flag_parses_and_refuses_garbage() -> None:
    assert stats.parse_slos("gold=0.5:0.05,silver=2:0.1")["silver"] == stats.Slo(2.0, 0.1)
    with pytest.raises(ValueError):
        stats.parse_slos("gold=0.5")


def test_only_loopback_targets_are_allowed() -> None:
    assert client.ensure_loopback("http://127.0.0.1:1/v1") == "http://127.0.0.1:1/v1"
    assert client.ensure_loopback("http://[::1]:1/") == "http://[::1]:1/"
    assert client.ensure_loopback("http://localhost:8/") == "http://localhost:8/"
    for url in ("http://10.0.0.1/", "https://example.com/", "http://0.0.0.0:80/"):
        with pytest.raises(client.NotLoopbackError):
            client.ensure_loopback(url)
