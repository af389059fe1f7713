"""Fitting recovers known coefficients; model files round-trip and refuse other schemas;
recalibration is bounded and reduces the error it reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tierscale_predictor import calibration, fit, latency, loadgen, modelfile, profilecsv
from tierscale_predictor.engine import Replica
from tierscale_predictor.latency import Correction, LatencyModel, WorkloadShape
from tierscale_predictor.profiles import StepProfile, load_profile, prefill_attention_pairs


def engine_step_rows(profile: StepProfile, seed: int, noise_frac: float) -> fit.StepRows:
    """Step records of the engine under varied load and shapes, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    records = []
    for rate, (p_mean, p99, o_mean, o99) in (
        (3.0, (1155, 4142, 211, 601)),
        (20.0, (1155, 4142, 211, 601)),
        (40.0, (200, 800, 300, 900)),
        (1.5, (6000, 12000, 60, 200)),  # long contexts, few sequences: context vs decode
    ):
        prompts = loadgen.lognormal_lengths(rng, p_mean, p99, 4000, max_tokens=8000)
        outputs = loadgen.lognormal_lengths(rng, o_mean, o99, 4000, max_tokens=2000)
        replica = Replica(profile, record_steps=True)
        for request in loadgen.poisson_requests(rng, rate, 250, prompts, outputs):
            replica.submit(request)
        replica.drain()
        assert replica.step_records is not None
        records += replica.step_records
    table = np.array(
        [
            (r.prefill_tokens, r.decode_seqs, r.context_tokens, r.step_s, r.attention_pairs)
            for r in records
        ],
        float,
    )
    noisy = table[:, 3] * rng.normal(1.0, noise_frac, len(table))
    return fit.StepRows(table[:, 0], table[:, 1], table[:, 2], noisy, table[:, 4])


@pytest.mark.parametrize("name", ["llama-3.1-8b-h100", "llama-3.1-8b-a100-80gb"])
def test_fit_recovers_engine_coefficients_within_5_percent(name: str) -> None:
    profile = load_profile(name)
    rows = engine_step_rows(profile, seed=11, noise_frac=0.02)
    result = fit.fit_steps(rows, rng=np.random.default_rng(0))
    got = dict(result.report.coefficients)
    for key in ("base_s", "decode_s_per_seq", "context_s_per_token"):
        assert got[key] == pytest.approx(getattr(profile, key), rel=0.05), key
    assert result.report.notes  # the roofline was kept
    # Compute cost and prefill attention both grow with a chunk's tokens: judge them by
    # what they predict, a long prefill and a large decode batch (compute-bound both).
    pairs = prefill_attention_pairs(0, 4096)
    for step in ((4096, 0, 4096, pairs), (0, 1024, 1024 * 500, 0)):
        assert result.model.step_s(*step) == pytest.approx(profile.step_s(*step), rel=0.05)
    assert result.report.r2 > 0.99 and result.report.mape < 0.03
    assert not result.report.in_sample and result.report.test_rows > 0


def test_fit_picks_the_knee_of_a_concave_decode_cost() -> None:
    profile = load_profile("qwen2.5-coder-3b-a100")
    rows = engine_step_rows(profile, seed=5, noise_frac=0.01)
    result = fit.fit_steps(rows, rng=np.random.default_rng(0), knee_candidates=(0, 10, 20, 40))
    assert result.model.decode_knee_seqs == 20
    assert result.model.decode_s_per_seq == pytest.approx(profile.decode_s_per_seq, rel=0.05)


def test_a_concurrency_tpot_sweep_alone_fits_a_tpot_line() -> None:
    concurrency = np.array([1.0, 8, 16, 32, 64, 1, 8, 16, 32, 64, 4, 128])
    tpot = 0.006 + 0.0002 * concurrency
    result = fit.fit_sweep(
        fit.SweepRows(tpot_s=tpot, concurrency=concurrency), rng=np.random.default_rng(0)
    )
    assert result.model.base_s == pytest.approx(0.006)
    assert result.model.decode_s_per_seq == pytest.approx(0.0002)
    assert result.report.mape < 1e-6 and result.report.notes
    pred = latency.predict_at_concurrency(result.model, 50, 1024, 256)
    assert pred.tpot_s == pytest.approx(0.006 + 0.0002 * 50, rel=0.01)


def test_a_sweep_with_lengths_recovers_the_closed_loop_model() -> None:
    # The TPOT-only sweep fit is linear in its features: the truth is the step model alone
    # (requestfit fits the full model, TTFT included: test_requestfit.py).
    profile = load_profile("llama-3.1-8b-h100")
    truth = replace(
        LatencyModel.from_profile(profile),
        compute_s_per_token=0.0,
        attention_s_per_token_pair=0.0,
        request_overhead_s=0.0,
        request_overhead_s_per_prompt_token=0.0,
        output_s_per_token=0.0,
    )
    rows = []
    for p, o in ((256, 64), (1024, 256), (4096, 128)):
        for c in (1, 8, 32, 96):
            rows.append((c, p, o, latency.predict_at_concurrency(truth, c, p, o).tpot_s))
    arr = np.array(rows, float)
    sweep = fit.SweepRows(
        tpot_s=arr[:, 3], concurrency=arr[:, 0], prompt_tokens=arr[:, 1], output_tokens=arr[:, 2]
    )
    result = fit.fit_sweep(sweep, rng=np.random.default_rng(0))
    assert result.report.mape < 0.02
    for c, p, o, tpot in rows:
        assert latency.predict_at_concurrency(result.model, int(c), p, o).tpot_s == pytest.approx(
            tpot, rel=0.03
        )


def test_fit_refuses_data_without_a_load_range() -> None:
    sweep = fit.SweepRows(tpot_s=np.array([0.01, 0.011]), concurrency=np.array([4.0, 4.0]))
    with pytest.raises(fit.FitError, match="two different loads"):
        fit.fit_sweep(sweep, rng=np.random.default_rng(0))


def test_model_file_round_trips(tmp_path: Path) -> None:
    model = replace(
        LatencyModel.from_profile(load_profile("qwen2.5-coder-3b-a100")),
        correction=Correction(1.2, 0.9),
    )
    path = tmp_path / "m.json"
    modelfile.save_model(model, path)
    assert modelfile.load_model(path) == model
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"schema_version": 2}, "schema_version is 2, this tierscale reads 1"),
        ({"features": ["intercept"]}, "feature schema ['intercept'] differs"),
        ({"kind": "something-else"}, "not a tierscale latency model"),
        ({"coefficients_s": [1, 2]}, "'coefficients_s' must be 5 numbers"),
    ],
)
def test_model_file_of_another_schema_is_refused(
    tmp_path: Path, edit: dict[str, object], message: str
) -> None:
    data = modelfile.model_to_dict(LatencyModel.from_profile(load_profile("llama-3.1-8b-h100")))
    path = tmp_path / "m.json"
    path.write_text(json.dumps({**data, **edit}))
    with pytest.raises(modelfile.ModelFileError, match=None) as err:
        modelfile.load_model(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{\n  "kind": oops\n}\n')
    with pytest.raises(modelfile.ModelFileError, match=r"m.json:2: column 11: invalid JSON"):
        modelfile.load_model(path)


def test_csv_reader_accepts_a_bare_concurrency_tpot_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text("concurrency,tpot_s\n1,0.0105\n\n20,0.0159\n")
    data = profilecsv.read_profile_csv(path)
    assert data.kind == "sweep" and data.rows == 2
    assert data.sweep is not None and list(data.sweep.tpot_s) == [0.0105, 0.0159]


SHAPE = WorkloadShape(1155, 211, 4142, 601)


def test_recalibration_moves_towards_observations_and_reports_its_error() -> None:
    model = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
    pred = latency.predict(model, 10.0, SHAPE)
    seen = calibration.Observed(
        10.0, SHAPE, 99.0, ttft_s=pred.ttft_s * 1.5, tpot_s=pred.tpot_s * 0.8
    )
    current = model
    errors = []
    for _ in range(30):
        result = calibration.recalibrate(current, seen)
        assert result.ttft_error_before is not None and result.ttft_error_after is not None
        assert abs(result.ttft_error_after) <= abs(result.ttft_error_before)
        errors.append(abs(result.ttft_error_after))
        current = result.model
    assert errors[-1] < 0.01 and errors[0] > 0.1
    assert current.correction.ttft_mult == pytest.approx(1.5, rel=0.01)
    assert current.correction.tpot_mult == pytest.approx(0.8, rel=0.01)


def test_recalibration_is_clamped() -> None:
    model = LatencyModel.from_profile(load_profile("llama-3.1-8b-h100"))
    pred = latency.predict(model, 10.0, SHAPE)
    seen = calibration.Observed(10.0, SHAPE, 99.0, ttft_s=pred.ttft_s * 50, tpot_s=None)
    settings = calibration.CalibrationSettings(smoothing=1.0)
    result = calibration.recalibrate(model, seen, settings)
    assert result.model.correction.ttft_mult == settings.max_mult
    assert result.model.correction.tpot_mult == 1.0 and "refitting" in result.note
