"""`bench/generalisation_targets.py` reads issue 11's targets from a generalisation run."""

from __future__ import annotations

from typing import Any

from bench.generalisation_targets import report_lines, targets


def _result(met: bool, gpu_h: float, attainment: dict[str, float], target: float) -> Any:
    worst = min(attainment, key=lambda k: attainment[k])
    return {
        "all_tiers_met": met,
        "gpu_hours": gpu_h,
        "attainment_by_tier": attainment,
        "worst_tier": {"tier": worst, "attainment": attainment[worst], "target": target},
    }


def _report() -> dict[str, Any]:
    one = {
        "scenario": "gen-1",
        "oracle_met": True,
        "policies": {
            "tierscale": _result(False, 4.0, {"a": 0.90, "b": 0.99}, 0.95),
            "static": _result(True, 3.0, {"a": 0.97, "b": 0.99}, 0.95),
            "isolated": _result(True, 4.0, {"a": 0.96, "b": 0.99}, 0.95),
            "hpa-tuned": _result(True, 2.0, {"a": 0.96, "b": 0.99}, 0.95),
        },
    }
    two = {
        "scenario": "gen-2",
        "oracle_met": False,
        "policies": {
            "tierscale": _result(True, 2.0, {"a": 0.99, "b": 0.98}, 0.95),
            "static": _result(True, 1.0, {"a": 0.96, "b": 0.96}, 0.95),
            "isolated": _result(True, 2.0, {"a": 0.97, "b": 0.98}, 0.95),
            "hpa-tuned": _result(True, 2.5, {"a": 0.96, "b": 0.99}, 0.95),
        },
    }
    summary = {
        p: {
            "all_tiers_met_frac": 0.5,
            "met_where_oracle_met_frac": None,
            "gpu_hours_vs_oracle": None,
        }
        for p in ("tierscale", "static", "isolated", "hpa-tuned")
    }
    return {"scenarios": [one, two], "summary": summary}


def test_each_target_reads_the_scenarios_it_is_about() -> None:
    t = targets(_report())
    assert t.oracle_met_misses == [("gen-1", "a", 0.90, 0.95)]
    # gen-2: static is cheaper but its worst tier is closer to its target, so it does
    # not count.
    assert t.static_cheaper == [("gen-1", 4.0 / 3.0)]
    assert t.vs_tuned == [2.0 / 2.5]  # only gen-2, where both met every tier
    assert [(round(p, 6), n, k) for p, n, k in t.below_isolated] == [(-6.0, "gen-1", "a")]
    assert (t.above_isolated, t.tiers) == (1, 4)


def test_the_report_prints_without_oracle_numbers() -> None:
    text = "\n".join(report_lines(_report()))
    assert "| tierscale | 50% | - | nanx |" in text
    assert "median 0.80x their GPU-hours (1 pairs)" in text
