"""The bias floor a breach proves: set from the load it happened at, decaying by time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tierscale.policy.breach import (
    borrowed_share,
    decayed_floor,
    floor_after,
    floor_now,
    inherited_size_share,
)
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


@pytest.mark.parametrize(
    ("capacity_rps", "expected"),
    [
        (10.0, 2.0),  # the model as at the breach: the floor as proven
        (7.5, 1.5),  # the model says less now: the same 5 req/s bound needs x1.5
        (4.0, 1.0),  # the model is below the bound already: no floor
        (20.0, 2.0),  # more optimistic since: never above the floor as proven
        (0.0, 2.0),  # no capacity known now: nothing to compare, the floor stands
    ],
)
def test_a_floor_bounds_the_capacity_it_was_proven_at(capacity_rps: float, expected: float) -> None:
    # A x2 floor proven where the model said 10 req/s per replica: at most 5 req/s.
    assert floor_now(2.0, 10.0, capacity_rps) == pytest.approx(expected)
    assert floor_now(1.0, 10.0, capacity_rps) == 1.0  # no floor, nothing to shrink


@pytest.mark.parametrize(
    ("sized_up_at_s", "window_s", "share"),
    [
        (None, 60.0, 1.0),  # the first decision: all of the window
        (None, 0.0, 1.0),  # even a window with no length yet
        (985.0, 60.0, 0.75),  # the window began 45 s before the pool was sized
        (940.0, 60.0, 0.0),  # it began after
        (1010.0, 60.0, 0.0),  # a time after now (clocks that disagree) explains nothing
        (985.0, 0.0, 0.0),
    ],
)
def test_the_share_of_a_window_before_the_pool_was_sized(
    sized_up_at_s: float | None, window_s: float, share: float
) -> None:
    assert inherited_size_share(sized_up_at_s, 1000.0, window_s) == pytest.approx(share)


@pytest.mark.parametrize(
    ("borrowed_rps", "served_rps", "share"),
    [(5.0, 10.0, 0.5), (15.0, 10.0, 1.0), (-1.0, 10.0, 0.0), (5.0, 0.0, 0.0)],
)
def test_the_share_of_a_pools_requests_borrowed(
    borrowed_rps: float, served_rps: float, share: float
) -> None:
    assert borrowed_share(borrowed_rps, served_rps) == pytest.approx(share)
