"""`bench/generalisation_ab.py` reads what a change did between two generalisation runs."""

from __future__ import annotations

from typing import Any

from bench.generalisation_ab import summary_lines


def _run(results: dict[str, tuple[bool, float, float]]) -> dict[str, Any]:
    return {
        "scenarios": [
            {
                "scenario": name,
                "policies": {
                    "tierscale": {
                        "all_tiers_met": met,
                        "gpu_hours": gpu_h,
                        "worst_tier": {"tier": "t", "attainment": attained, "target": 0.95},
                    }
                },
            }
            for name, (met, gpu_h, attained) in results.items()
        ]
    }


def test_better_and_worse_are_counted_beyond_the_points_only() -> None:
    before = _run({"a": (True, 4.0, 0.96), "b": (False, 2.0, 0.90), "c": (True, 1.0, 0.97)})
    after = _run({"a": (False, 3.0, 0.94), "b": (False, 2.0, 0.903), "c": (True, 1.0, 0.99)})
    lines = summary_lines(before, after, "tierscale", 0.5)
    assert lines[0] == "every tier met: 2 -> 1 of 3; GPU-hours 7.0 -> 6.0 (-14.3 %)"
    assert "- a: worst tier +1.0 -> -1.0 points, GPU-hours 4.00 -> 3.00 worse" in lines
    assert "- b: worst tier -5.0 -> -4.7 points, GPU-hours 2.00 -> 2.00" in lines
    assert "- c: worst tier +2.0 -> +4.0 points, GPU-hours 1.00 -> 1.00 better" in lines
    assert lines[-1] == "1 better, 1 worse by more than 0.5 points"
