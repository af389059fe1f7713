"""Token release times between the engine's first-token and finish times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tierscale_testbed.simvllm import token_schedule as ts


def test_tokens_are_evenly_spaced_from_first_token_to_finish() -> None:
    assert ts.token_times_s(1.0, 2.0, 5) == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert ts.token_times_s(1.0, 1.0, 1) == [1.0]


def test_rejects_impossible_schedules() -> None:
    with pytest.raises(ValueError):
        ts.token_times_s(1.0, 2.0, 0)
    with pytest.raises(ValueError):
        ts.token_times_s(2.0, 1.0, 3)


@given(
    first=st.floats(0, 100),
    duration=st.floats(0, 100),
    n=st.integers(2, 500),
)
def test_mean_gap_is_the_requests_tpot(first: float, duration: float, n: int) -> None:
    times = ts.token_times_s(first, first + duration, n)
    gaps = ts.inter_token_gaps_s(times)
    assert len(times) == n
    assert times[0] == first
    assert times[-1] == first + duration
    assert sum(gaps) / len(gaps) == pytest.approx(duration / (n - 1), abs=1e-9)
    assert all(g >= -1e-12 for g in gaps)


def test_due_count_includes_a_token_exactly_at_now() -> None:
    times = [1.0, 2.0, 3.0]
    assert [ts.due_count(times, t) for t in (0.5, 1.0, 2.5, 3.0, 9.0)] == [0, 1, 2, 3, 3]
