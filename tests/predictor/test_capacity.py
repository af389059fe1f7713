"""Latency prediction and the planner's linear capacity contract."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierscale_predictor import capacity, engine, latency, loadgen
from tierscale_predictor.engine import simulate
from tierscale_predictor.latency import LatencyModel, SloTarget, WorkloadShape
from tierscale_predictor.profiles import bundled_profile_names, load_profile

MODELS = {name: LatencyModel.from_profile(load_profile(name)) for name in bundled_profile_names()}
CONV = WorkloadShape(1155, 211, 4142, 601)
CODE = WorkloadShape(2048, 28, 7436, 251)

shapes = st.builds(
    WorkloadShape,
    st.floats(16, 4000),
    st.floats(2, 600),
    st.one_of(st.none(), st.floats(4000, 12000)),
    st.one_of(st.none(), st.floats(600, 3000)),
)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    shape=shapes,
    u1=st.floats(0.0, 1.2),
    u2=st.floats(0.0, 1.2),
)
def test_more_load_never_predicts_lower_latency(
    name: str, shape: WorkloadShape, u1: float, u2: float
) -> None:
    model = MODELS[name]
    lo, hi = sorted((u1, u2))
    w = capacity.work_s_per_request(model, shape)
    a = latency.predict(model, lo / w, shape)
    b = latency.predict(model, hi / w, shape)
    assert b.ttft_s >= a.ttft_s * (1 - 1e-9)
    assert b.tpot_s >= a.tpot_s * (1 - 1e-9)
    assert b.stable <= a.stable


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    shape=shapes,
    ttft_s=st.floats(0.05, 3.0),
    tpot_s=st.floats(0.005, 0.3),
    shrink=st.floats(0.3, 1.0),
)
def test_tighter_slo_never_allows_more_busy_time(
    name: str, shape: WorkloadShape, ttft_s: float, tpot_s: float, shrink: float
) -> None:
    model = MODELS[name]
    loose = capacity.max_busy_frac(model, SloTarget(ttft_s, tpot_s), shape)
    assert 0.0 <= loose < 1.0
    assert capacity.max_busy_frac(model, SloTarget(ttft_s * shrink, tpot_s), shape) <= loose
    assert capacity.max_busy_frac(model, SloTarget(ttft_s, tpot_s * shrink), shape) <= loose


def test_capacity_is_busy_fraction_over_work_and_meets_the_slo_at_its_edge() -> None:
    model = MODELS["llama-3.1-8b-h100"]
    slo = SloTarget(ttft_s=0.5, tpot_s=0.03)
    u = capacity.max_busy_frac(model, slo, CONV)
    rate = capacity.max_rate_rps(model, slo, CONV)
    assert rate == pytest.approx(u / capacity.work_s_per_request(model, CONV))
    at_edge = latency.predict(model, rate * 0.999, CONV, slo.percentile)
    beyond = latency.predict(model, rate * 1.01, CONV, slo.percentile)
    assert at_edge.ttft_s <= slo.ttft_s and at_edge.tpot_s <= slo.tpot_s
    assert beyond.ttft_s > slo.ttft_s or beyond.tpot_s > slo.tpot_s


def test_an_slo_even_an_idle_replica_misses_gets_zero_capacity() -> None:
    model = MODELS["llama-3.1-8b-a100-80gb"]
    assert capacity.max_busy_frac(model, SloTarget(0.01, 0.001), CONV) == 0.0
    assert capacity.max_rate_rps(model, SloTarget(0.01, 0.001), CONV) == 0.0


def test_beyond_saturation_the_prediction_is_unstable() -> None:
    model = MODELS["llama-3.1-8b-h100"]
    rate = 1.05 / capacity.work_s_per_request(model, CONV)
    pred = latency.predict(model, rate, CONV)
    assert not pred.stable and pred.ttft_s == float("inf")


def test_work_of_a_mix_is_the_rate_weighted_sum() -> None:
    model = MODELS["llama-3.1-8b-h100"]
    w_conv = capacity.work_s_per_request(model, CONV)
    w_code = capacity.work_s_per_request(model, CODE)
    assert w_conv > 0 and w_code > 0
    mixed_rate = 3.0 * w_conv + 5.0 * w_code
    assert latency.predict_at_busy(model, mixed_rate, CONV).busy_frac == pytest.approx(mixed_rate)


def engine_p99(profile_name: str, rate: float, seed: int) -> loadgen.LoadSummary:
    rng = np.random.default_rng(seed)
    prompts = loadgen.lognormal_lengths(rng, 1155, 4142, 20_000, max_tokens=16_000)
    outputs = loadgen.lognormal_lengths(rng, 211, 601, 20_000, max_tokens=4_000)
    requests = loadgen.poisson_requests(rng, rate, 3000, prompts, outputs)
    timings = [t for t in simulate(load_profile(profile_name), requests) if t.request_id >= 300]
    return loadgen.summarize(timings)


@pytest.mark.parametrize("busy_frac", [0.3, 0.6])
def test_prediction_tracks_the_engine_on_a_conversation_shape(busy_frac: float) -> None:
    model = MODELS["llama-3.1-8b-h100"]
    rate = busy_frac / capacity.work_s_per_request(model, CONV)
    pred = latency.predict(model, rate, CONV)
    truth = engine_p99("llama-3.1-8b-h100", rate, seed=3)
    # Documented accuracy (docs/predictor.md): within ~40% at p99 for this shape.
    assert pred.ttft_s == pytest.approx(truth.ttft_p_s, rel=0.4)
    assert pred.tpot_s == pytest.approx(truth.tpot_p_s, rel=0.25)


@pytest.mark.parametrize("busy_frac", [0.3, 0.6])
def test_lower_percentiles_of_ttft_track_the_engine(busy_frac: float) -> None:
    # S2 (PolyServe's setup) plans its tiers at p95. With the p99 prompt's prefill at
    # every percentile the model said 1.5-2x the engine's p90/p95 TTFT on this shape,
    # so the planner bought twice the replicas it needed and starved the lowest tier.
    model = MODELS["llama-3.1-8b-h100"]
    rate = busy_frac / capacity.work_s_per_request(model, CONV)
    rng = np.random.default_rng(3)
    prompts = loadgen.lognormal_lengths(rng, 1155, 4142, 20_000, max_tokens=16_000)
    outputs = loadgen.lognormal_lengths(rng, 211, 601, 20_000, max_tokens=4_000)
    requests = loadgen.poisson_requests(rng, rate, 3000, prompts, outputs)
    timings = simulate(load_profile("llama-3.1-8b-h100"), requests)
    ttfts = np.array([t.ttft_s for t in timings if t.request_id >= 300])
    for pct in (90.0, 95.0):
        measured = float(np.quantile(ttfts, pct / 100.0))
        assert latency.predict(model, rate, CONV, pct).ttft_s == pytest.approx(measured, rel=0.3)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(MODELS)), shape=shapes, u=st.floats(0.0, 0.95))
def test_a_higher_percentile_never_predicts_a_lower_ttft(
    name: str, shape: WorkloadShape, u: float
) -> None:
    model = MODELS[name]
    rate = u / capacity.work_s_per_request(model, shape)
    ttfts = [latency.predict(model, rate, shape, p).ttft_s for p in (50.0, 90.0, 95.0, 99.0)]
    assert all(a <= b * (1 + 1e-9) for a, b in zip(ttfts, ttfts[1:], strict=False))


def test_the_ttft_prompt_is_the_percentiles_up_to_the_p99() -> None:
    assert latency.ttft_prompt_tokens(CONV, 99.0) == CONV.prompt_tokens_tail
    assert latency.ttft_prompt_tokens(CONV, 99.9) == CONV.prompt_tokens_tail
    p90, p95 = (latency.ttft_prompt_tokens(CONV, p) for p in (90.0, 95.0))
    assert CONV.prompt_tokens_mean <= p90 < p95 < CONV.prompt_tokens_tail
    # The lognormal through the mean and the p99: its p90 is exp(mu + 1.2816 sigma).
    z99 = 2.3263
    sigma = z99 - math.sqrt(z99 * z99 - 2.0 * math.log(4142 / 1155))
    mu = math.log(1155) - sigma * sigma / 2.0
    assert p90 == pytest.approx(math.exp(mu + 1.2816 * sigma), rel=1e-3)
    mix = latency.mix_shapes([(1.0, CONV), (1.0, CODE)])
    lo, hi = sorted((CONV.prompt_tokens_mean, CODE.prompt_tokens_mean))
    assert lo <= latency.ttft_prompt_tokens(mix, 90.0) < mix.prompt_tokens_tail


def test_closed_loop_prediction_follows_the_engine() -> None:
    profile = load_profile("qwen2.5-coder-3b-a100")
    model = MODELS["qwen2.5-coder-3b-a100"]
    for concurrency in (1, 20, 60):
        truth = loadgen.summarize(
            loadgen.closed_loop(profile, concurrency, 665, 387, 2 * concurrency + 10)
        )
        pred = latency.predict_at_concurrency(model, concurrency, 665, 387)
        assert pred.tpot_s == pytest.approx(truth.tpot_mean_s, rel=0.05)


def test_a_mix_of_one_shape_is_that_shape_and_weights_are_relative() -> None:
    assert latency.mix_shapes([(3.0, CONV)]) == CONV
    a = latency.mix_shapes([(1.0, CODE), (3.0, CONV)])
    b = latency.mix_shapes([(2.0, CODE), (6.0, CONV)])
    assert a == b
    assert a.prompt_tokens_mean == pytest.approx(0.25 * 2048 + 0.75 * 1155)
    with pytest.raises(ValueError, match="positive weight"):
        latency.mix_shapes([(0.0, CODE)])


@settings(max_examples=30, deadline=None)
@given(r_code=st.floats(0.0, 20.0), r_conv=st.floats(0.01, 20.0))
def test_work_of_a_mix_is_exactly_linear_in_rates(r_code: float, r_conv: float) -> None:
    model = MODELS["llama-3.1-8b-h100"]
    mix = latency.mix_shapes([(r_code, CODE), (r_conv, CONV)])
    busy = r_code * capacity.work_s_per_request(model, CODE) + r_conv * capacity.work_s_per_request(
        model, CONV
    )
    total = r_code + r_conv
    assert total * capacity.work_s_per_request(model, mix) == pytest.approx(busy, rel=1e-9)
    assert latency.predict(model, total, mix).busy_frac == pytest.approx(busy, rel=1e-9)


def test_a_mix_at_its_predicted_capacity_meets_the_slo_on_the_engine() -> None:
    model = MODELS["llama-3.1-8b-h100"]
    slo = SloTarget(ttft_s=1.0, tpot_s=0.1)
    mix = latency.mix_shapes([(1.0, CODE), (1.0, CONV)])
    rate = capacity.max_rate_rps(model, slo, mix)
    rng = np.random.default_rng(4)
    prompts = np.concatenate(
        [
            loadgen.lognormal_lengths(rng, 2048, 7436, 10_000, max_tokens=16_000),
            loadgen.lognormal_lengths(rng, 1155, 4142, 10_000, max_tokens=16_000),
        ]
    )
    outputs = np.concatenate(
        [
            loadgen.lognormal_lengths(rng, 28, 251, 10_000, max_tokens=4_000),
            loadgen.lognormal_lengths(rng, 211, 601, 10_000, max_tokens=4_000),
        ]
    )
    requests = loadgen.poisson_requests(rng, 0.9 * rate, 3000, prompts, outputs)
    timings = [
        t for t in simulate(load_profile("llama-3.1-8b-h100"), requests) if t.request_id >= 300
    ]
    truth = loadgen.summarize(timings)
    # The model is ~10% optimistic on this mix (docs/predictor.md); 0.9x capacity holds.
    assert truth.ttft_p_s <= slo.ttft_s and truth.tpot_p_s <= slo.tpot_s * 1.05


def test_clients_beyond_max_num_seqs_wait_in_ttft_not_in_tpot() -> None:
    profile = load_profile("qwen2.5-coder-3b-a100")
    model = replace(MODELS["qwen2.5-coder-3b-a100"], max_num_seqs=10)
    capped = latency.predict_at_concurrency(model, 30, 665, 387)
    at_cap = latency.predict_at_concurrency(model, 10, 665, 387)
    assert capped.tpot_s == pytest.approx(at_cap.tpot_s)
    assert capped.ttft_s > 10 * at_cap.ttft_s
    truth = loadgen.summarize(loadgen.closed_loop(profile, 30, 665, 387, 60, max_num_seqs=10))
    assert capped.tpot_s == pytest.approx(truth.tpot_mean_s, rel=0.05)


def test_closed_loop_paced_by_the_token_budget_queues_in_ttft() -> None:
    profile = load_profile("llama-3.1-8b-h100")
    model = MODELS["llama-3.1-8b-h100"]
    # 128 clients x 4000-token prompts / 50-token answers need ~10k prefill tokens a step.
    timings = loadgen.closed_loop(profile, 128, 4000, 50, 200)
    pred = latency.predict_at_concurrency(model, 128, 4000, 50)
    ttft = float(np.mean([t.ttft_s for t in timings]))
    assert pred.ttft_s == pytest.approx(ttft, rel=0.1)
    assert pred.tpot_s == pytest.approx(loadgen.summarize(timings).tpot_mean_s, rel=0.05)
    assert ttft > 10 * latency.predict_at_concurrency(model, 16, 4000, 50).ttft_s


def test_just_past_capacity_the_failing_limit_is_named() -> None:
    """TPOT bounds short answers to long prompts; saturation bounds a loose SLO."""
    model = MODELS["llama-3.1-8b-h100"]
    code = WorkloadShape(2048, 28, 8000, 250)
    tight = SloTarget(0.5, 0.03, 99.5)
    u = capacity.max_busy_frac(model, tight, code)
    assert latency.failing_limits(model, u, tight, code) == ()
    assert latency.failing_limits(model, u + 1e-3, tight, code) == ("tpot",)
    loose = SloTarget(1000.0, 10.0, 99.0)
    u = capacity.max_busy_frac(model, loose, CONV)
    assert latency.failing_limits(model, u, loose, CONV) == ()
    assert set(latency.failing_limits(model, min(u + 1e-3, 1.0), loose, CONV)) & {
        "busy",
        "batch",
        "prefill",
    }
    assert latency.failing_limits(model, 0.0, SloTarget(0.01, 0.001), CONV) == ("ttft", "tpot")


def test_a_replica_is_never_planned_past_the_busy_ceiling_and_holds_there_on_the_engine() -> None:
    """Near u = 1 the model's latencies stay finite while the engine's batch runs away.

    The conversation shape with a 1 s / 50 ms SLO met it in the model up to u = 0.988;
    the step engine at that rate missed TPOT for over half the requests (p50 54 ms).
    Capped at `batch_limit_frac` (0.9), the engine keeps the promise within a margin."""
    model = MODELS["llama-3.1-8b-h100"]
    slo = SloTarget(1.0, 0.05)
    u = capacity.max_busy_frac(model, slo, CONV)
    assert u <= model.tail.batch_limit_frac
    assert latency.failing_limits(model, u + 1e-3, slo, CONV) == ("busy",)
    loose = SloTarget(30.0, 1.0)
    decode_heavy = WorkloadShape(250, 650, 940, 2048)
    assert capacity.max_busy_frac(model, loose, decode_heavy) <= model.tail.batch_limit_frac
    rate = capacity.max_rate_rps(model, slo, CONV)
    rng = np.random.default_rng(5)
    prompts = loadgen.lognormal_lengths(rng, 1155, 4142, 20_000, max_tokens=16_000)
    outputs = loadgen.lognormal_lengths(rng, 211, 601, 20_000, max_tokens=4_000)
    requests = loadgen.poisson_requests(rng, rate, 3000, prompts, outputs)
    timings = [
        t for t in simulate(load_profile("llama-3.1-8b-h100"), requests) if t.request_id >= 300
    ]
    tpot_miss = float(np.mean([t.tpot_s > slo.tpot_s for t in timings]))
    assert tpot_miss <= 0.03  # 1 % allowed; the TPOT tail's own error remains (docs)


def test_long_answers_at_their_predicted_capacity_keep_the_tpot_promise_on_the_engine() -> None:
    """Long answers decode through the batch's swings, which set their TPOT tail.

    1,000-token prompts and 650-token answers (lognormal, cv 0.8) with TPOT <= 27 ms at
    p99: without the batch's spread the model allowed 10.2 req/s per replica, where the
    step engine missed TPOT for 31 % of requests (`bench/attainment_fidelity.py`)."""
    model = MODELS["llama-3.1-8b-h100"]
    rng = np.random.default_rng(6)
    prompts = np.clip(np.rint(rng.lognormal(np.log(1000) - 0.2475, 0.7035, 3000)), 1, 16384)
    outputs = np.clip(np.rint(rng.lognormal(np.log(650) - 0.2475, 0.7035, 3000)), 1, 2048)
    shape = WorkloadShape(
        float(prompts.mean()),
        float(outputs.mean()),
        float(np.quantile(prompts, 0.99)),
        float(np.quantile(outputs, 0.99)),
    )
    slo = SloTarget(0.412, 0.0273)
    rate = capacity.max_rate_rps(model, slo, shape)
    requests = loadgen.poisson_requests(rng, rate, 3000, prompts.astype(int), outputs.astype(int))
    timings = [
        t for t in simulate(load_profile("llama-3.1-8b-h100"), requests) if t.request_id >= 300
    ]
    tpot_miss = float(np.mean([t.tpot_s > slo.tpot_s for t in timings]))
    assert tpot_miss <= 0.03  # 1 % allowed


@pytest.mark.parametrize(
    ("prompt_mean", "output_mean", "cv", "rate_rps"),
    [(4000.0, 200.0, 0.8, 4.58), (4000.0, 100.0, 1.0, 4.0)],
)
def test_the_mean_step_pays_for_compute_bound_prefill_steps(
    prompt_mean: float, output_mean: float, cv: float, rate_rps: float
) -> None:
    """A long prompt's chunk tips its step onto the compute line (the engine's step is the
    busier of the two lines). Averaging the lines per request, the model's mean step was
    13-20 % short of the step engine's here (4,000 / 200 tokens at 4.58 req/s: 12.6
    against 16.1 ms; 4,000 / 100 at 4 req/s: 9.3 against 11.1 ms), so the batch and the
    TPOT it sets were too small; with the compute excess it is within 8 % (over four
    seeds: -6 % to +7 %)."""
    profile = load_profile("llama-3.1-8b-h100")
    model = MODELS["llama-3.1-8b-h100"]
    rng = np.random.default_rng(0)
    sigma = math.sqrt(math.log1p(cv * cv))

    def lengths(mean: float, cap: int) -> np.ndarray:
        drawn = rng.lognormal(math.log(mean) - sigma * sigma / 2.0, sigma, 3000)
        return np.clip(np.rint(drawn), 1, cap).astype(int)

    prompts, outputs = lengths(prompt_mean, 16384), lengths(output_mean, 2048)
    shape = loadgen.observed_shape(prompts, outputs)
    replica = engine.Replica(profile, record_steps=True)
    for request in loadgen.poisson_requests(rng, rate_rps, 3000, prompts, outputs):
        replica.submit(request)
    replica.drain()
    steps = replica.step_records or []
    engine_step_s = float(np.mean([s.step_s for s in steps[len(steps) // 5 :]]))
    predicted_s = latency.mean_step_s(model, rate_rps, shape)
    assert predicted_s == pytest.approx(engine_step_s, rel=0.08)
    without = replace(model, tail=replace(model.tail, compute_excess=0.0))
    assert latency.mean_step_s(without, rate_rps, shape) < 0.9 * engine_step_s


def test_the_compute_excess_leaves_short_prompts_and_the_memory_line_alone() -> None:
    """Prompts far below the tipping point (about 650 tokens with 120 decoding) cost what
    the memory line says; a profile without a compute line is untouched."""
    model = MODELS["llama-3.1-8b-h100"]
    without = replace(model, tail=replace(model.tail, compute_excess=0.0))
    short = WorkloadShape(100, 200, 150, 300)
    assert latency.mean_step_s(model, 20.0, short) == pytest.approx(
        latency.mean_step_s(without, 20.0, short), rel=1e-3
    )
    no_line = replace(model, compute_s_per_token=0.0, compute_floor_s=0.0)
    assert latency.mean_step_s(no_line, 3.0, CODE) == latency.mean_step_s(
        replace(no_line, tail=without.tail), 3.0, CODE
    )
    # More load never shortens the step (the planner's bisection relies on it).
    steps = [latency.mean_step_s(model, r, CODE) for r in np.linspace(0.1, 6.0, 60)]
    assert all(b >= a for a, b in zip(steps, steps[1:], strict=False))
