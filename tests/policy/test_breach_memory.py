"""The bias floor a breach proves: set from the load it happened at, decaying by time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tierscale.policy.breach import decayed_floor, floor_after
from tierscale.policy.config import PlannerConfig

CFG = PlannerConfig()


def test_a_breach_below_the_models_capacity_proves_their_ratio_and_a_step() -> None:
    # The model says a replica carries 10 req/s; the pool broke its SLO at 8 per replica.
    assert floor_after(1.0, 10.0, 8.0, CFG) == pytest.approx(10.0 / 8.0 * CFG.bias_step)


def test_a_breach_beyond_the_models_capacity_proves_nothing_new() -> None:
    assert floor_after(1.0, 10.0, 12.0, CFG) == 1.0
    assert floor_after(1.3, 10.0, 12.0, CFG) == 1.3  # an earlier floor stands


def test_the_floor_is_bounded_by_the_largest_bias() -> None:
    assert floor_after(1.0, 10.0, 1.0, CFG) == CFG.max_bias


def test_no_load_or_no_capacity_teaches_nothing() -> None:
    assert floor_after(1.2, 10.0, None, CFG) == 1.2
    assert floor_after(1.2, 0.0, 5.0, CFG) == 1.2
    assert floor_after(1.2, 10.0, 0.0, CFG) == 1.2


def test_the_floor_excess_halves_every_half_life() -> None:
    half_life_s = CFG.breach_memory_half_life_s
    assert half_life_s is not None
    assert decayed_floor(1.4, half_life_s, CFG) == pytest.approx(1.2)
    assert decayed_floor(1.4, 2 * half_life_s, CFG) == pytest.approx(1.1)
    assert decayed_floor(1.4, 0.0, CFG) == pytest.approx(1.4)
    assert decayed_floor(1.4, -5.0, CFG) == pytest.approx(1.4)  # clocks disagree: no growth


def test_without_a_memory_there_is_no_floor() -> None:
    forgetful = replace(CFG, breach_memory_half_life_s=None)
    assert floor_after(1.0, 10.0, 8.0, forgetful) == 1.0
    assert decayed_floor(1.4, 0.0, forgetful) == 1.0
