"""bench/mismatch_recovery.py: GPU-hours after a time, outcomes and the target's verdict."""

from __future__ import annotations

from tierscale_sim.fleet import TickRecord
from tierscale_sim.scoring import RunScore, TierScore

from bench import mismatch_recovery as mr


def tick(t_s: float, gpus: int) -> TickRecord:
    return TickRecord(t_s, {}, {}, {}, {}, gpus)


def tier(key: str, got: float, want: float, requests: int = 100) -> TierScore:
    return TierScore(key, requests, 0, got, want, None, None, None, None, None, None)


def score(*tiers: TierScore) -> RunScore:
    return RunScore("x", 0, 1.0, {t.tier_key: t for t in tiers}, 0, 0, 1.0, 0, 0, 0, 0, 0, 0, 0)


def test_gpu_hours_count_only_what_is_held_after_the_time() -> None:
    # 2 GPUs until 600 s, 4 until 1200 s, 1 until the end at 1800 s.
    timeline = [tick(0, 2), tick(600, 4), tick(1200, 1)]
    assert mr.gpu_hours_after(timeline, 0.0, 1800.0) == (2 * 600 + 4 * 600 + 600) / 3600
    assert mr.gpu_hours_after(timeline, 900.0, 1800.0) == (4 * 300 + 600) / 3600
    assert mr.gpu_hours_after(timeline, 1800.0, 1800.0) == 0.0


def test_the_worst_tier_decides_and_empty_tiers_do_not_count() -> None:
    out = mr.outcome(
        score(tier("ns/a", 0.995, 0.99), tier("ns/b", 0.97, 0.99), tier("ns/c", 0.0, 0.99, 0)),
        [tick(0, 1)],
        0.0,
        3600.0,
    )
    assert not out.met
    assert out.worst_tier == "b"
    assert round(out.worst_margin_points, 6) == -2.0
    assert out.gpu_hours == 1.0
    assert mr.outcome(score(tier("ns/a", 0.99, 0.99)), [], 0.0, 10.0).met


def row(met: bool, gpu_hours: float) -> mr.Row:
    oracle = mr.Outcome(True, 0.5, "a", 2.0)
    mine = mr.Outcome(met, 0.5 if met else -1.0, "a", gpu_hours)
    return mr.Row("s", "step x1.2", True, oracle, {name: mine for name in mr.CONFIGS}, 1.05)


def test_a_scenario_passes_only_met_and_within_the_gpu_bound() -> None:
    assert row(True, 2.2).passes("default")  # 1.10x
    assert not row(True, 2.4).passes("default")  # 1.20x
    assert not row(False, 2.0).passes("default")
    lines = mr.summary([row(True, 2.2), row(True, 2.4), row(False, 2.0)])
    assert "| default | 2 of 3 | 1.10x | 1.20x | 2 of 3 | 1 of 3 |" in lines
    assert "| default, engine as modelled (control) | - | 1.05x | 1.05x | 3 of 3 | - |" in lines
