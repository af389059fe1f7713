"""Splitting the attainment target's miss budget between TTFT and TPOT (`SloTarget.miss_frac`),
and the running step's residual below p99 (`TailParams.ttft_residual_bounded`)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierscale_predictor import capacity, latency
from tierscale_predictor.latency import LatencyModel, SloTarget, WorkloadShape
from tierscale_predictor.profiles import bundled_profile_names, load_profile

MODELS = {name: LatencyModel.from_profile(load_profile(name)) for name in bundled_profile_names()}

shapes = st.builds(
    WorkloadShape,
    st.floats(16, 6000),
    st.floats(2, 800),
    st.one_of(st.none(), st.floats(6000, 20000)),
    st.one_of(st.none(), st.floats(800, 3000)),
)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    shape=shapes,
    ttft_s=st.floats(0.1, 4.0),
    tpot_s=st.floats(0.01, 0.3),
    attainment=st.sampled_from([0.9, 0.95, 0.99]),
)
def test_an_equal_split_of_the_budget_is_each_latency_at_half_of_it(
    name: str, shape: WorkloadShape, ttft_s: float, tpot_s: float, attainment: float
) -> None:
    model = MODELS[name]
    miss = 1.0 - attainment
    percentile = 100.0 - 50.0 * miss
    held = SloTarget(ttft_s, tpot_s, percentile)
    split = SloTarget(ttft_s, tpot_s, percentile, miss_frac=miss, tpot_share_frac=(0.5, 0.5))
    assert capacity.max_busy_frac(model, split, shape) == pytest.approx(
        capacity.max_busy_frac(model, held, shape), abs=1e-5
    )


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    shape=shapes,
    ttft_s=st.floats(0.1, 4.0),
    tpot_s=st.floats(0.01, 0.3),
    least=st.floats(0.0, 0.5),
)
def test_a_wider_share_range_never_lowers_capacity(
    name: str, shape: WorkloadShape, ttft_s: float, tpot_s: float, least: float
) -> None:
    model = MODELS[name]

    def busy(share: tuple[float, float]) -> float:
        slo = SloTarget(ttft_s, tpot_s, 97.5, miss_frac=0.05, tpot_share_frac=share)
        return capacity.max_busy_frac(model, slo, shape)

    equal, some, free = busy((0.5, 0.5)), busy((least, 1.0 - least)), busy((0.0, 1.0))
    assert equal <= some + 1e-5 and some <= free + 1e-5


def test_a_loose_tpot_leaves_its_share_of_the_misses_to_ttft() -> None:
    # 5,221-token prompts with a 2 s TTFT and a 150 ms TPOT on A100: TPOT misses ~0, so
    # TTFT may take the whole 5 % (held at p95, not p97.5) and one replica carries more.
    model = MODELS["llama-3.1-8b-a100-80gb"]
    shape = WorkloadShape(5221, 680, prompt_tokens_p99=18000, output_tokens_p99=3100)
    equal = SloTarget(2.0, 0.15, 97.5, miss_frac=0.05)
    by_need = replace(equal, tpot_share_frac=(0.0, 0.5))
    assert capacity.max_rate_rps(model, by_need, shape) > 1.5 * capacity.max_rate_rps(
        model, equal, shape
    )
    # ... but TPOT never gets more than its most share: a tight TPOT is held as before.
    tight = SloTarget(10.0, 0.03, 97.5, miss_frac=0.05)
    assert capacity.max_rate_rps(model, replace(tight, tpot_share_frac=(0.0, 0.5)), shape) == (
        pytest.approx(capacity.max_rate_rps(model, tight, shape), rel=1e-4)
    )


@pytest.mark.parametrize("percentile", [90.0, 95.0, 97.5, 99.0, 99.5])
def test_a_bounded_residual_keeps_its_p99_size_below_p99_and_changes_nothing_above(
    percentile: float,
) -> None:
    model = MODELS["llama-3.1-8b-h100"]
    bounded = replace(model, tail=replace(model.tail, ttft_residual_bounded=1.0))
    shape = WorkloadShape(1000, 650, prompt_tokens_p99=6000, output_tokens_p99=2000)
    rate = 0.5 * capacity.max_rate_rps(model, SloTarget(10.0, 1.0, 99.0), shape)
    before = latency.predict(model, rate, shape, percentile).ttft_s
    after = latency.predict(bounded, rate, shape, percentile).ttft_s
    if percentile >= 99.0:
        assert after == pytest.approx(before, rel=1e-12)
    else:
        assert after > before
