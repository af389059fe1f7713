"""`bench/capacity_swings.py` counts the scale-ups a falling capacity estimate bought."""

from __future__ import annotations

from typing import Any

from bench.capacity_swings import tier_swings


def _columns(
    desired: list[int], demand: list[float], cap: list[float], reason: list[str]
) -> dict[str, list[Any]]:
    return {
        "desired_replicas": list(desired),
        "planned_rate_rps": list(demand),
        "capacity_rps_per_replica": list(cap),
        "reason": list(reason),
    }


def test_only_a_scale_up_at_flat_demand_and_falling_capacity_counts() -> None:
    cols = _columns(
        desired=[2, 6, 6, 8, 9, 9],
        demand=[2.0, 2.0, 2.0, 3.0, 3.0, 3.0],
        cap=[1.8, 0.03, 1.8, 1.8, 0.5, 0.5],
        reason=["Steady", "ScaleUpLimited", "Stabilized", "ForecastUp", "SLOBreach", "Steady"],
    )
    result = tier_swings("run", "tier", cols)
    # tick 1: capacity 1.8 -> 0.03 at flat demand (counted); tick 3: demand up (not);
    # tick 4: capacity fell but an observed breach scaled up (not).
    assert (result.scale_ups, result.capacity_driven) == (3, 1)
    assert result.swing_max == 1.8 / 0.03


def test_missing_numbers_never_count() -> None:
    cols = _columns(
        desired=[2, 4],
        demand=[2.0, 2.0],
        cap=[1.8, 0.0],
        reason=["Steady", "ScaleUpLimited"],
    )
    result = tier_swings("run", "tier", cols)
    assert (result.scale_ups, result.capacity_driven, result.swing_max) == (1, 0, 1.0)
