"""bench/reactive_bound.py: the reactive controller's bound on a step in demand."""

from __future__ import annotations

import numpy as np

from bench import reactive_bound as rb


def step(before_rps: int, after_rps: int, at_s: int, seconds: int) -> np.ndarray:
    arrivals = np.full(seconds, float(before_rps))
    arrivals[at_s:] = float(after_rps)
    return arrivals


def test_steady_demand_is_carried_in_full() -> None:
    out = rb.simulate(np.full(600, 4.0), 2.0, 120.0, 15.0, 1, 10)
    assert out.attainment == 1.0
    assert out.replica_s == 2 * 600


def test_a_step_behind_a_cold_start_misses_what_the_old_replicas_cannot_carry() -> None:
    # 2 -> 8 req/s at 300 s; 2 req/s per replica: 1 replica carries 2 of the 8 until the
    # 3 more asked for at 315 s are Ready at 435 s: 135 s x 6 req/s missed of 4,800.
    out = rb.simulate(step(2, 8, 300, 900), 2.0, 120.0, 15.0, 1, 10)
    assert out.attainment == 1.0 - 135 * 6 / (300 * 2 + 600 * 8)
    instant = rb.simulate(step(2, 8, 300, 900), 2.0, 0.0, 15.0, 1, 10)
    assert instant.attainment == 1.0 - 15 * 6 / (
        300 * 2 + 600 * 8
    )  # the interval it takes to see it


def test_max_replicas_binds() -> None:
    out = rb.simulate(np.full(300, 10.0), 2.0, 0.0, 15.0, 1, 3)
    assert out.attainment == 0.6


def test_the_least_headroom_is_the_one_held_before_the_step() -> None:
    arrivals = step(2, 8, 300, 900)
    found = rb.least_headroom(arrivals, 2.0, 120.0, 15.0, 1, 10, target=0.99)
    assert found is not None
    headroom, out = found
    assert out.attainment >= 0.99
    below = rb.simulate(arrivals, 2.0, 120.0, 15.0, 1, 10, headroom - rb.HEADROOM_STEP)
    assert below.attainment < 0.99
    assert rb.least_headroom(arrivals, 2.0, 120.0, 15.0, 1, 2, target=0.99) is None
