"""Each baseline's scaling rule on its own, against hand-computed HPA arithmetic."""

from __future__ import annotations

from tierscale_sim.policies.hpa import (
    HpaRule,
    hpa_recommendation,
    stabilize,
    total_value_recommendation,
)

RULE = HpaRule(target=0.7)


def test_hpa_scales_by_ratio_outside_tolerance() -> None:
    assert hpa_recommendation(4, 4, 0.91, RULE) == 6  # ceil(4 * 0.91 / 0.7) = ceil(5.2)
    assert hpa_recommendation(4, 4, 0.75, RULE) == 4  # ratio 1.07 is inside 10% tolerance
    assert hpa_recommendation(4, 4, 0.35, RULE) == 2


def test_hpa_counts_starting_pods_as_idle_when_scaling_up() -> None:
    # 2 ready at 0.84 and 2 starting: (0.84*2)/(0.7*4) = 0.6 -> no further scale-up.
    assert hpa_recommendation(4, 2, 0.84, RULE) == 4
    # 2 ready at 1.0 and 1 starting: 2/(0.7*3) = 0.952 -> hold.
    assert hpa_recommendation(3, 2, 1.0, RULE) == 3


def test_hpa_scale_down_waits_for_the_stabilisation_window() -> None:
    history: list[tuple[float, int]] = []
    assert stabilize(history, 0.0, 8, 8, RULE, 1, 20) == 8
    assert stabilize(history, 15.0, 2, 8, RULE, 1, 20) == 8
    assert stabilize(history, 299.0, 2, 8, RULE, 1, 20) == 8
    assert stabilize(history, 301.0, 2, 8, RULE, 1, 20) == 2


def test_hpa_scale_up_is_limited_to_double_or_four_pods() -> None:
    assert stabilize([], 0.0, 30, 2, RULE, 1, 50) == 6  # max(2*2, 2+4)
    assert stabilize([], 0.0, 30, 10, RULE, 1, 50) == 20
    assert stabilize([], 0.0, 30, 10, RULE, 1, 12) == 12


def test_keda_queue_rule_targets_five_waiting_per_replica() -> None:
    keda = HpaRule(target=5.0)
    assert total_value_recommendation(2, 31.0, keda) == 7
    assert total_value_recommendation(2, 10.4, keda) == 2  # within tolerance
    assert total_value_recommendation(3, 0.0, keda) == 0
