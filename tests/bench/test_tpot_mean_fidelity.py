"""bench/tpot_mean_fidelity.py: the per-tier summary of observed over predicted TPOT."""

from __future__ import annotations

from bench.tpot_mean_fidelity import Window, summary


def test_the_summary_gives_each_tiers_spread_of_both_ratios() -> None:
    windows = [Window("ns/a", 1.0 + k / 100, 2.0 + k / 10) for k in range(10)]
    windows += [Window("ns/b", 0.5, None)]
    lines = summary(windows)
    assert lines[2] == "| ns/a | 10 | 1.010 / 1.045 / 1.090 | 2.100 / 2.450 / 2.900 |"
    assert lines[3] == "| ns/b | 1 | 0.500 / 0.500 / 0.500 | - |"
