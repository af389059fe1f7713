"""Request-level fitting (TTFT and TPOT together), its inputs, and calibration by windows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tierscale_predictor import calibration, latency, requestfit
from tierscale_predictor.latency import Correction, LatencyModel, WorkloadShape
from tierscale_predictor.profiles import load_profile
from tierscale_predictor.requestfit import LevelData

BASE = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
TRUTH = replace(
    BASE,
    base_s=0.0072,
    compute_floor_s=0.0072,
    output_s_per_token=0.0011,
    request_overhead_s=0.03,
    decode_s_per_seq=9e-6,
)


def sweep(model: LatencyModel, loads: tuple[float, ...]) -> list[LevelData]:
    levels = []
    for c in loads:
        for p, o in ((256, 64), (2048, 256)):
            pred = latency.predict_closed_loop(model, c, p, o)
            levels.append(LevelData("concurrency", c, p, o, pred.ttft_s, pred.tpot_s))
    return levels


def test_fit_recovers_ttft_and_tpot_at_load_levels_it_never_saw() -> None:
    levels = sweep(TRUTH, (1, 4, 16, 64))
    result = requestfit.fit_levels(levels, base=BASE)
    ttft, tpot = result.report.held_out_mape
    assert ttft is not None and tpot is not None
    assert ttft < 0.05 and tpot < 0.05
    assert len(result.report.held_out) == len(levels)  # every level predicted held out
    before = requestfit.mape([requestfit.LevelError(lv, *requestfit.predict_level(
        BASE, lv, forward="analytic")) for lv in levels])  # fmt: skip
    assert before[0] is not None and before[0] > 0.3  # the base misses the 30 ms overhead
    unseen = latency.predict_closed_loop(result.model, 32, 1024, 128)
    truth = latency.predict_closed_loop(TRUTH, 32, 1024, 128)
    assert unseen.ttft_s == pytest.approx(truth.ttft_s, rel=0.05)
    assert unseen.tpot_s == pytest.approx(truth.tpot_s, rel=0.05)


def test_fitted_terms_stay_inside_their_physical_bounds() -> None:
    wild = [replace(lv, ttft_s=(lv.ttft_s or 0) + 5.0) for lv in sweep(TRUTH, (1, 4, 16))]
    result = requestfit.fit_levels(wild, base=BASE, hold_out=False)
    fitted = dict(result.report.fitted)
    assert 0.0 <= fitted["request_overhead_s"] <= 1.0
    assert 0.0 <= fitted["output_s_per_token"] <= 0.05


def test_two_levels_are_too_few_to_hold_one_out() -> None:
    result = requestfit.fit_levels(sweep(TRUTH, (1, 8)), base=BASE)
    assert result.report.held_out == () and "at least 3" in result.report.notes[0]


def test_a_vllm_bench_serve_result_is_one_level() -> None:
    data = {
        "max_concurrency": 8,
        "request_rate": "inf",
        "input_lens": [100, 300, 200],
        "output_lens": [3, 5, 1],
        "ttfts": [0.05, 0.07, 0.0],
        "itls": [[0.01, 0.03], [0.02, 0.02, 0.02, 0.02], []],
        "errors": ["", "", "timeout"],
    }
    level = requestfit.level_from_bench_result(data, origin="x.json")
    assert (level.kind, level.load, level.requests) == ("concurrency", 8.0, 2)
    assert level.prompt_tokens == 200 and level.output_tokens == 4
    assert level.ttft_s == pytest.approx(0.06)
    assert level.tpot_s == pytest.approx((0.04 / 2 + 0.08 / 4) / 2)
    burst = requestfit.level_from_bench_result({**data, "max_concurrency": None}, origin="b")
    assert (burst.kind, burst.load) == ("burst", 2.0)
    with pytest.raises(requestfit.RequestFitError, match="missing field 'itls'"):
        requestfit.level_from_bench_result({"input_lens": []} | {"output_lens": [], "ttfts": []},
                                           origin="y.json")  # fmt: skip


def test_two_prometheus_scrapes_are_one_rate_level() -> None:
    def scrape(n: float, ttft_sum: float, tpot_sum: float, prompt: float, out: float) -> str:
        lab = '{model_name="m",engine="0"}'
        return "\n".join(
            [
                "# TYPE vllm:time_to_first_token_seconds histogram",
                f'vllm:time_to_first_token_seconds_bucket{{le="0.1",model_name="m"}} {n}',
                f"vllm:time_to_first_token_seconds_sum{lab} {ttft_sum}",
                f"vllm:time_to_first_token_seconds_count{lab} {n}",
                f"vllm:request_time_per_output_token_seconds_sum{lab} {tpot_sum}",
                f"vllm:request_time_per_output_token_seconds_count{lab} {n}",
                f"vllm:request_prompt_tokens_sum{lab} {prompt}",
                f"vllm:request_prompt_tokens_count{lab} {n}",
                f"vllm:request_generation_tokens_sum{lab} {out}",
                f"vllm:request_generation_tokens_count{lab} {n}",
            ]
        )

    before = requestfit.parse_prometheus_text(scrape(10, 1.0, 0.2, 5000, 1000))
    after = requestfit.parse_prometheus_text(scrape(30, 3.4, 0.6, 15000, 3000))
    level = requestfit.level_from_prometheus(before, after, 10.0, origin="scrapes")
    assert (level.kind, level.load) == ("rate", 2.0)
    assert level.ttft_s == pytest.approx(2.4 / 20) and level.tpot_s == pytest.approx(0.02)
    assert (level.prompt_tokens, level.output_tokens) == (500.0, 100.0)


SHAPE = WorkloadShape(1155, 211, 4142, 601)


def test_windows_at_one_load_only_support_one_term_and_several_loads_both() -> None:
    def window(rate: float, add: float, mult: float) -> calibration.Observed:
        raw = latency.predict(BASE, rate, SHAPE)
        return calibration.Observed(rate, SHAPE, 99.0, raw.ttft_s * mult + add, None)

    settings = calibration.CalibrationSettings(mode="additive")
    one_load = calibration.calibrate_windows(BASE, [window(5.0, 0.2, 1.0)] * 3, settings)
    assert one_load.ttft_terms == "add" and one_load.tpot_terms == "none"
    assert one_load.result.model.correction.ttft_add_s == pytest.approx(0.2, rel=1e-6)
    loads = [window(r, 0.1, 1.3) for r in (2.0, 10.0, 18.0)]
    both = calibration.calibrate_windows(BASE, loads, settings)
    assert both.ttft_terms == "mult+add"
    corr = both.result.model.correction
    assert (corr.ttft_mult, corr.ttft_add_s) == (pytest.approx(1.3), pytest.approx(0.1))
    assert both.result.ttft_error_after is not None and both.result.ttft_error_after < 1e-6


def test_additive_recalibration_is_bounded_by_the_observation() -> None:
    settings = calibration.CalibrationSettings(mode="additive", smoothing=1.0)
    raw = latency.predict(BASE, 5.0, SHAPE)
    seen = calibration.Observed(5.0, SHAPE, 99.0, ttft_s=raw.ttft_s * 20, tpot_s=None)
    result = calibration.recalibrate(BASE, seen, settings)
    assert result.model.correction.ttft_add_s == pytest.approx(0.8 * raw.ttft_s * 20)
    assert "refitting" in result.note
    assert result.model.correction == Correction(ttft_add_s=result.model.correction.ttft_add_s)
