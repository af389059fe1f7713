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


def _cut_exponential(mean: float, limit: float, n: int = 4000) -> list[float]:
    """`n` evenly spaced quantiles of an exponential of `mean` cut at `limit` (a heavy prompt
    tail that a pool's `--max-model-len` stops): deterministic, no sampling noise."""
    return [min(-mean * math.log(1.0 - (i + 0.5) / n), limit) for i in range(n)]


# gen-s20261130-006: exponential prompts of mean 5,221 tokens cut at 16,384, where 14.7 % of
# the requests fall between 10,000 and the limit and 4.3 % sit at it (the true p99).
PROMPTS = _cut_exponential(5221.0, 16384.0)


def test_a_tail_cut_by_max_model_len_is_read_up_to_the_limit_not_past_it() -> None:
    # The layout vLLM builds for --max-model-len 16384 stops at 10,000: Prometheus reads
    # any quantile above it as 10,000, 39 % short of the true p99.
    real = Histogram.of(PROMPTS, vllm.one_two_five_buckets(16384))
    assert real.upper_bounds[-1] == 10_000.0
    assert real.quantile(0.99) == 10_000.0
    closed = real.quantile(0.99, at_most=16384.0)
    assert closed is not None and 15_000.0 < closed <= 16384.0
    # A layout up to a longer context (Llama-3.1's 131,072, what the simulator used for
    # every pool) interpolates the 10,000-20,000 bucket to ~19,300: longer than any
    # request. Closed at the limit it reads the same as the real layout.
    wide = Histogram.of(PROMPTS, vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN))
    unclosed = wide.quantile(0.99)
    assert unclosed is not None and unclosed > 19_000.0
    assert wide.quantile(0.99, at_most=16384.0) == pytest.approx(closed)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0])
def test_closing_the_top_bucket_changes_nothing_below_the_limit(q: float) -> None:
    h = Histogram.of(PROMPTS, vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN))
    limited = h.quantile(q, at_most=16384.0)
    plain = h.quantile(q)
    assert limited is not None and plain is not None
    assert limited <= 16384.0 and limited <= plain
    if plain <= 10_000.0:  # below the bucket the limit cuts: the same reading
        assert limited == pytest.approx(plain)
    with pytest.raises(ValueError, match="at_most"):
        h.quantile(q, at_most=0.0)


def test_a_limit_at_or_below_the_top_bound_caps_the_reading() -> None:
    h = Histogram.of([50_000.0] * 10, vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN))
    assert h.quantile(0.99, at_most=8192.0) == 8192.0  # inconsistent data: never past it
    beyond = Histogram.of([500.0] * 10, (1.0, 10.0, 100.0))
    assert beyond.quantile(0.5) == 100.0  # Prometheus: the highest finite bound
    assert beyond.quantile(0.5, at_most=1000.0) == pytest.approx(550.0)
    assert beyond.quantile(0.5, at_most=50.0) == 50.0
