"""Integer weights keep the planned split exactly: fixed total, no drift from rounding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tierscale.adapters.envoy import routing


def test_thirds_sum_to_the_total_and_ties_break_by_name() -> None:
    weights = routing.integer_weights({"c": 1 / 3, "a": 1 / 3, "b": 1 / 3})
    assert weights == {"a": 334, "b": 333, "c": 333}


def test_zero_negative_and_nan_shares_are_omitted() -> None:
    weights = routing.integer_weights({"a": 0.0, "b": 1.0, "c": -0.5, "d": float("nan")})
    assert weights == {"b": routing.WEIGHT_TOTAL}


def test_a_share_too_small_for_one_unit_is_omitted() -> None:
    assert routing.integer_weights({"a": 1.0, "b": 1e-6}) == {"a": routing.WEIGHT_TOTAL}


def test_nothing_to_route_gives_no_weights() -> None:
    assert routing.integer_weights({}) == {}
    assert routing.integer_weights({"a": 0.0}) == {}


@given(
    st.dictionaries(
        st.text("abcdef", min_size=1, max_size=3),
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
        min_size=1,
    )
)
def test_weights_sum_to_total_and_stay_within_one_unit_of_exact(shares: dict[str, float]) -> None:
    weights = routing.integer_weights(shares)
    mass = sum(shares.values())
    if mass <= 0.0:
        assert weights == {}
        return
    assert sum(weights.values()) == routing.WEIGHT_TOTAL
    assert all(w > 0 for w in weights.values())
    for name, share in shares.items():
        assert abs(weights.get(name, 0) - share / mass * routing.WEIGHT_TOTAL) < 1.0


def test_names_with_dots_or_slashes_become_stat_safe() -> None:
    assert routing.cluster_name("prod", "llama.8b") == "prod_llama-8b"
    assert routing.tier_stat_name("prod", "gold") == "prod_gold"
