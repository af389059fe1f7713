"""The terms real vLLM needs: costs outside the step, the compute-bound line, prefill
attention; hand-computed in the engine, consistent in the latency model and model files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tierscale_predictor import capacity, latency, loadgen, modelfile
from tierscale_predictor.engine import EngineRequest, Replica, simulate
from tierscale_predictor.latency import Correction, LatencyModel, WorkloadShape
from tierscale_predictor.profiles import (
    ProfileError,
    StepProfile,
    load_profile,
    prefill_attention_pairs,
)

BASE = StepProfile(
    name="terms",
    model="m",
    gpu="g",
    base_s=0.010,
    prefill_s_per_token=0.001,
    decode_s_per_seq=0.002,
    context_s_per_token=0.0001,
    kv_capacity_tokens=100_000,
    max_num_batched_tokens=64,
    max_num_seqs=64,
)
OVERHEADS = replace(
    BASE,
    request_overhead_s=0.005,
    request_overhead_s_per_prompt_token=0.00005,
    first_token_overhead_s=0.003,
    output_s_per_token=0.0015,
)


def test_costs_outside_the_step_add_to_ttft_and_tpot_by_hand() -> None:
    (t,) = simulate(OVERHEADS, [EngineRequest(0, 1.0, prompt_tokens=10, output_tokens=3)])
    ready = 1.0 + 0.005 + 10 * 0.00005
    prefill = 0.010 + 10 * 0.001 + 10 * 0.0001
    decode1 = 0.010 + 0.002 + 11 * 0.0001
    decode2 = 0.010 + 0.002 + 12 * 0.0001
    assert t.first_scheduled_s == pytest.approx(ready)
    assert t.ttft_s == pytest.approx(ready - 1.0 + prefill + 0.003 + 0.0015)
    assert t.tpot_s == pytest.approx((decode1 + decode2) / 2 + 0.0015)
    assert t.finish_s == pytest.approx(ready + prefill + decode1 + decode2 + 0.003 + 3 * 0.0015)


def test_costs_outside_the_step_do_not_slow_the_engine() -> None:
    requests = [EngineRequest(i, 0.01 * i, 50, 20) for i in range(30)]
    plain = Replica(BASE)
    delayed = Replica(replace(BASE, output_s_per_token=0.004, first_token_overhead_s=0.01))
    for r in requests:
        plain.submit(r)
        delayed.submit(r)
    a, b = plain.drain(), delayed.drain()
    assert plain.steps_executed == delayed.steps_executed
    by_id = sorted(a, key=lambda t: t.request_id), sorted(b, key=lambda t: t.request_id)
    for x, y in zip(*by_id, strict=True):
        assert y.ttft_s == pytest.approx(x.ttft_s + 0.014)
        assert y.tpot_s == pytest.approx(x.tpot_s + 0.004)


def test_deadlines_are_judged_on_delivered_tokens() -> None:
    # Engine alone: first token at 0.021 s, TPOT 12-13 ms; the overheads make both late.
    request = EngineRequest(0, 0.0, 10, 3, ttft_slo_s=0.025, tpot_slo_s=0.0135)
    assert simulate(BASE, [request])[0].deadline_met
    assert not simulate(OVERHEADS, [request])[0].deadline_met


def test_compute_bound_line_takes_over_for_large_batches() -> None:
    roof = replace(BASE, compute_s_per_token=0.0005, compute_floor_s=0.008)
    # 4 decodes: memory line 0.008 s, compute line 0.002 - 0.008 < 0: memory binds.
    assert roof.step_s(0, 4, 0) == pytest.approx(0.010 + 4 * 0.002)
    # 100 decodes: memory 0.2 s of decode cost, compute 0.05 - 0.008: still memory.
    assert roof.step_s(0, 100, 0) == pytest.approx(0.010 + 0.2)
    cheap_decode = replace(roof, decode_s_per_seq=0.0001)
    # 200 decodes: memory 0.02, compute 0.1 - 0.008 = 0.092 binds.
    assert cheap_decode.step_s(0, 200, 0) == pytest.approx(0.010 + 0.092)
    with pytest.raises(ProfileError, match="compute_floor_s must be <= base_s"):
        replace(BASE, compute_floor_s=0.02)


def test_profile_terms_are_physically_bounded() -> None:
    with pytest.raises(ProfileError, match="output_s_per_token .* exceeds its physical bound"):
        replace(BASE, output_s_per_token=0.2)
    with pytest.raises(ProfileError, match="must be finite and >= 0"):
        replace(BASE, request_overhead_s=-0.001)


def test_prefill_attention_grows_with_context_by_hand() -> None:
    attn = replace(BASE, attention_s_per_token_pair=1e-6)
    (t,) = simulate(attn, [EngineRequest(0, 0.0, prompt_tokens=100, output_tokens=1)])
    pairs1 = prefill_attention_pairs(0, 64)  # 64 queries over 1..64 keys
    pairs2 = prefill_attention_pairs(64, 36)  # 36 queries over 65..100 keys
    assert pairs1 == 64 * 65 // 2 and pairs2 == 36 * 64 + 36 * 37 // 2
    assert pairs1 + pairs2 == 100 * 101 // 2  # chunking does not change the total
    chunk1 = 0.010 + 64 * 0.001 + 64 * 0.0001 + pairs1 * 1e-6
    chunk2 = 0.010 + 36 * 0.001 + 100 * 0.0001 + pairs2 * 1e-6
    assert t.ttft_s == pytest.approx(chunk1 + chunk2)


def test_step_records_carry_attention_pairs() -> None:
    replica = Replica(BASE, record_steps=True)
    replica.submit(EngineRequest(0, 0.0, 100, 2))
    replica.drain()
    assert replica.step_records is not None
    assert [r.attention_pairs for r in replica.step_records] == [2080, 2970, 0]


@pytest.mark.parametrize("name", ["llama-3.1-8b-h100", "llama-3.1-8b-a100-80gb"])
def test_closed_loop_prediction_follows_the_engine_with_every_term(name: str) -> None:
    profile = load_profile(name)
    model = LatencyModel.from_profile(profile)
    one = loadgen.closed_loop(profile, 1, 1024, 128, 12)
    pred = latency.predict_at_concurrency(model, 1, 1024, 128)
    assert pred.ttft_s == pytest.approx(sum(t.ttft_s for t in one) / len(one), rel=0.02)
    assert pred.tpot_s == pytest.approx(loadgen.summarize(one).tpot_mean_s, rel=0.02)
    # At 64 clients TPOT still follows; TTFT does not: identical requests in a closed loop
    # bunch (those prefilled together finish together and come back together), which the
    # mean-field formula ignores (docs/predictor.md, known limits).
    many = loadgen.closed_loop(profile, 64, 1024, 128, 138)
    pred = latency.predict_at_concurrency(model, 64, 1024, 128)
    assert pred.tpot_s == pytest.approx(loadgen.summarize(many).tpot_mean_s, rel=0.1)


def test_additive_correction_moves_predictions_and_capacity() -> None:
    model = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
    shape = WorkloadShape(1155, 211, 4142, 601)
    raw = latency.predict(model, 5.0, shape)
    shifted = model.with_correction(Correction(ttft_add_s=0.1, tpot_add_s=0.002))
    moved = latency.predict(shifted, 5.0, shape)
    assert moved.ttft_s == pytest.approx(raw.ttft_s + 0.1)
    assert moved.tpot_s == pytest.approx(raw.tpot_s + 0.002)
    slo = latency.SloTarget(0.5, 0.03)  # TPOT binds below the busy ceiling (u 0.81)
    assert capacity.max_busy_frac(shifted, slo, shape) < capacity.max_busy_frac(model, slo, shape)


def test_model_files_carry_the_new_terms_and_old_files_still_load(tmp_path: Path) -> None:
    model = replace(
        LatencyModel.from_profile(load_profile("llama-3.1-8b-a100-80gb")),
        correction=Correction(1.1, 0.9, 0.05, 0.001),
    )
    path = tmp_path / "m.json"
    bounded = replace(model, tail=replace(model.tail, ttft_residual_bounded=0.5))
    modelfile.save_model(bounded, path)
    assert modelfile.load_model(path) == bounded
    modelfile.save_model(model, path)
    assert modelfile.load_model(path) == model
    old = json.loads(path.read_text())
    del old["roofline"], old["overheads"]
    del old["correction"]["ttft_add_s"], old["correction"]["tpot_add_s"]
    for structural in (
        "busy_limit_frac",
        "batch_spread",
        "compute_excess",
        "ttft_residual_bounded",
    ):
        del old["tail"][structural]
    path.write_text(json.dumps(old))
    loaded = modelfile.load_model(path)
    assert loaded.output_s_per_token == 0.0 and loaded.compute_s_per_token == 0.0
    assert loaded.correction == Correction(1.1, 0.9)
    # The model's structure, not a fitted number: files from before load the defaults.
    assert loaded.tail == latency.DEFAULT_TAIL


@pytest.mark.parametrize(
    ("prompt", "output", "busy"),
    [(212, 273, 0.2), (1000, 200, 0.5), (5000, 500, 0.8), (300, 800, 0.8)],
)
def test_the_mean_tpot_is_the_mean_of_the_models_own_tpot_distribution(
    prompt: float, output: float, busy: float
) -> None:
    # The integral of the survival the percentiles come from, against the average of 49
    # of those percentiles (1st, 3rd, ..., 97th: a midpoint rule that misses the top 2 %,
    # so slightly low).
    model = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
    shape = WorkloadShape(prompt, output, 4.0 * prompt, 4.0 * output)
    rate = busy / latency.work_s_of_shape(model, shape)
    by_quantiles = sum(latency.predict(model, rate, shape, 1 + 2 * k).tpot_s for k in range(49))
    mean_s = latency.tpot_mean_s(model, rate, shape)
    assert by_quantiles / 49 <= mean_s <= 1.02 * by_quantiles / 49


def test_the_mean_tpot_grows_with_load_and_ends_at_overload() -> None:
    model = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
    shape = WorkloadShape(1000, 200)
    top = 1.0 / latency.work_s_of_shape(model, shape)
    means = [latency.tpot_mean_s(model, f * top, shape) for f in (0.0, 0.3, 0.6, 0.9)]
    assert means == sorted(means) and means[0] < means[-1]
    assert latency.tpot_mean_s(model, 1.1 * top, shape) == latency.UNSTABLE_S
    with pytest.raises(ValueError, match="rate_rps"):
        latency.tpot_mean_s(model, -1.0, shape)
