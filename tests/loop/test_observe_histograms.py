"""What vLLM's histogram buckets allow, as the observation step reads them."""

from __future__ import annotations

import math

import pytest

from tierscale.domain import vllm
from tierscale.domain.metrics import Histogram


def test_the_share_under_a_value_is_bounded_by_the_bucket_that_holds_it() -> None:
    h = Histogram.of([0.005, 0.012, 0.015, 0.018, 0.03], vllm.ITL_BUCKETS_S)
    assert h.fraction_at_most_bounds(0.02) == (0.2, 0.8)  # 0.012-0.018 may be either side
    assert h.fraction_at_most(0.02) == pytest.approx(0.2 + 0.6 * (0.01 / 0.015))  # linear
    assert h.fraction_at_most_bounds(0.025) == (0.8, 0.8)  # on a bound: resolved
    assert h.fraction_at_most_bounds(100.0) == (1.0, 1.0)
    assert Histogram.of([], vllm.ITL_BUCKETS_S).fraction_at_most_bounds(0.02) is None


def test_the_quantile_lies_in_the_bucket_that_holds_its_rank() -> None:
    h = Histogram.of([0.005, 0.012, 0.015, 0.018, 0.03], vllm.ITL_BUCKETS_S)
    assert h.quantile_bucket(0.5) == (0.01, 0.025)
    assert h.quantile_bucket(0.1) == (0.0, 0.01)
    assert h.quantile_bucket(1.0) == (0.025, 0.05)
    q = h.quantile(0.5)
    assert q is not None and 0.01 <= q <= 0.025
    beyond = Histogram.of([500.0], vllm.ITL_BUCKETS_S)
    assert beyond.quantile_bucket(0.9) == (80.0, math.inf)
    assert Histogram.of([], vllm.ITL_BUCKETS_S).quantile_bucket(0.9) is None
