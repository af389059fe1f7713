"""Sharing a GPU budget by need: how the static baseline and the oracle size fixed fleets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tierscale.sim.apportion import share_budget


def test_an_unbinding_budget_changes_nothing() -> None:
    counts = {"a": 3, "b": 4}
    assert share_budget(counts, {"a": 2.5, "b": 3.2}, {"a": 1, "b": 1}, 10) == counts
    assert share_budget(counts, {"a": 2.5, "b": 3.2}, {"a": 1, "b": 1}, None) == counts


def test_the_budget_goes_to_the_largest_fractions_of_need() -> None:
    # S2 at 0.9 of optimal: needs 2.57, 4.27, 5.26, 6.86 replicas, 20 GPUs.
    need = {"t20": 2.57, "t30": 4.27, "t50": 5.26, "t100": 6.86}
    counts = {"t20": 3, "t30": 5, "t50": 6, "t100": 7}
    floors = dict.fromkeys(need, 1)
    assert share_budget(counts, need, floors, 20) == {"t20": 3, "t30": 5, "t50": 5, "t100": 7}


@given(
    st.lists(st.floats(0.0, 30.0), min_size=1, max_size=6),
    st.integers(1, 60),
)
def test_the_share_fits_the_budget_and_never_exceeds_the_need(
    needs: list[float], budget: int
) -> None:
    need = {f"t{i}": n for i, n in enumerate(needs)}
    floors = {k: 1 for k in need}
    counts = {k: max(1, -int(-n // 1)) for k, n in need.items()}
    out = share_budget(counts, need, floors, budget)
    assert all(floors[k] <= out[k] <= counts[k] for k in need)
    if sum(counts.values()) > budget:
        assert sum(out.values()) == max(budget, sum(floors.values()))
    else:
        assert out == counts
