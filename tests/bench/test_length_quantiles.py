"""bench/length_quantiles.py: both readings of a p99 against the exact one."""

from __future__ import annotations

import numpy as np
import pytest

from bench import length_quantiles as lq
from tierscale.domain import vllm
from tierscale.domain.metrics import Histogram

BOUNDS = vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN)


def test_a_power_law_sample_is_read_closer_by_the_tail_reading() -> None:
    n = 20_000
    lengths = 130.0 * (1.0 - (np.arange(n) + 0.5) / n) ** (-1.0 / 2.0)
    r = lq.readings(lengths, "gen-s1-000", "chat-0", "prompt")
    assert r.exact == pytest.approx(1300.0, rel=0.01)
    assert r.tail == pytest.approx(r.exact, rel=0.02)
    assert r.linear > 1.1 * r.exact


def test_the_summary_gives_each_length_and_reading_a_row() -> None:
    rows = [
        lq.Reading("s", "t", "prompt", 100.0, 120.0, 100.0),
        lq.Reading("s", "u", "prompt", 100.0, 140.0, 110.0),
        lq.Reading("s", "t", "output", 10.0, 10.0, 10.0),
    ]
    lines = lq.summary(rows)
    assert len(lines) == 6
    prompt_linear = next(x for x in lines if x.startswith("| prompt | linear"))
    assert prompt_linear.endswith("| 2 | 1.22 | 1.30 | 1.38 |")
    assert any(x.startswith("| output | power-law tail | 1 | 1.00 | 1.00 | 1.00 |") for x in lines)


def test_generated_tiers_are_read_in_both_lengths() -> None:
    rows = lq.scenario_readings(7, 0)
    assert rows and len(rows) % 2 == 0
    assert {r.which for r in rows} == {"prompt", "output"}
    assert all(r.exact >= 1.0 and r.linear >= 1.0 and r.tail >= 1.0 for r in rows)


def _pareto(scale: float, power: float, n: int = 20_000) -> list[float]:
    """Evenly spaced quantiles of a Pareto law (survival (x / scale)^-power): no noise."""
    return [scale * (1.0 - (i + 0.5) / n) ** (-1.0 / power) for i in range(n)]


@pytest.mark.parametrize("power", [1.2, 2.0, 3.0])
def test_a_power_law_tail_is_read_where_it_lies_inside_its_bucket(power: float) -> None:
    h = Histogram.of(_pareto(130.0, power), BOUNDS)
    true_p99 = 130.0 * 0.01 ** (-1.0 / power)  # inside a bucket, not on a bound
    tail, linear = lq.power_law_quantile(h, 0.99), h.quantile(0.99)
    assert tail is not None and linear is not None
    assert tail == pytest.approx(true_p99, rel=0.01)
    assert linear > true_p99 * 1.1  # the density falls across a 1-2-5 bucket
    bucket = h.quantile_bucket(0.99)
    assert bucket is not None and bucket[0] < tail <= bucket[1]


def test_the_linear_reading_stands_where_the_buckets_tell_no_tail() -> None:
    first = Histogram.of([0.5] * 90 + [30.0] * 10, BOUNDS)  # rank in (0, 1]: no lower bound
    assert lq.power_law_quantile(first, 0.5) == first.quantile(0.5)
    last = Histogram.of([100.0] * 90 + [150.0] * 10, BOUNDS)  # nothing beyond (100, 200]
    assert lq.power_law_quantile(last, 0.95) == last.quantile(0.95)
    beyond = Histogram.of([500.0] * 10, (1.0, 10.0, 100.0))  # the +Inf bucket
    assert lq.power_law_quantile(beyond, 0.5) == 100.0
    assert lq.power_law_quantile(Histogram((1.0,), (0.0,), 0.0), 0.5) is None
