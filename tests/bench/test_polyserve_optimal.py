"""The S2 optimal rate: replicas over the capacity-weighted mix, per mix phase."""

from __future__ import annotations

import pytest

from bench.polyserve_optimal import _optimal

CAPS = {"a": 10.0, "b": 20.0}


def test_the_optimal_rate_weights_each_tiers_capacity_by_its_share() -> None:
    # Half the requests at 10 req/s per replica, half at 20: 20 replicas serve 266.7 req/s.
    assert _optimal(20, {"a": 1.0, "b": 1.0}, CAPS) == pytest.approx(20 / (0.5 / 10 + 0.5 / 20))
    # Shares are normalised, and a tier missing from a phase's mix has no share.
    assert _optimal(20, {"a": 3.0, "b": 1.0}, CAPS) == pytest.approx(
        _optimal(20, {"a": 0.75, "b": 0.25}, CAPS)
    )
    assert _optimal(20, {"b": 1.0}, CAPS) == pytest.approx(400.0)
    # Inverting the mix towards the slower tier lowers the optimum.
    assert _optimal(20, {"a": 0.8, "b": 0.2}, CAPS) < _optimal(20, {"a": 0.2, "b": 0.8}, CAPS)
