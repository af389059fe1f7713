"""bench/attainment_fidelity.py: a replica run at exactly the model's capacity, scored."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench import attainment_fidelity as af
from tierscale_predictor import capacity, latency, loadgen, profiles

DEFAULT = latency.DEFAULT_TAIL


def test_a_row_runs_the_engine_at_the_models_capacity_and_counts_misses() -> None:
    row = af.Row(1000.0, 200.0, 0.8, 3.0, 99.0)
    outcome = af.run_row(row, latency.DEFAULT_TAIL, 600)
    assert outcome is not None
    model = latency.LatencyModel.from_profile(profiles.load_profile(af.PROFILE))
    rng = np.random.default_rng(0)
    prompts = af._lengths(1000.0, 0.8, af.PROMPT_MAX, 600, rng)
    outputs = af._lengths(200.0, 0.8, af.OUTPUT_MAX, 600, rng)
    slo = latency.SloTarget(outcome.ttft_slo_s, outcome.tpot_slo_s, 99.0)
    assert outcome.rate_rps == capacity.max_rate_rps(
        model, slo, loadgen.observed_shape(prompts, outputs)
    )
    assert 0.0 <= outcome.ttft_miss <= 1.0 and 0.0 <= outcome.tpot_miss <= 1.0
    assert outcome.both_met <= 1.0 - max(outcome.ttft_miss, outcome.tpot_miss) + 1e-12


def test_the_summary_is_misses_over_the_allowance() -> None:
    rows = [af.Row(250.0, 50.0, 0.8, 1.5, 99.0), af.Row(250.0, 50.0, 0.8, 1.5, 95.0)]
    outcomes = [
        af.Outcome(rows[0], 1.0, 0.1, 0.01, 0.02, 0.005, 0.98),
        af.Outcome(rows[1], 1.0, 0.1, 0.01, 0.0, 0.10, 0.90),
    ]
    summary = af.summary(outcomes)
    # TTFT: 0.02 of 1 % allowed = 2.0; 0 of 5 % = 0. TPOT: 0.5 and 2.0.
    assert summary["ttft_over_1"] == 0.5 and summary["tpot_over_1"] == 0.5
    assert summary["ttft_median"] == pytest.approx(1.0)
    assert summary["tpot_median"] == pytest.approx(1.25)


def test_a_probe_reports_the_engine_and_the_model_at_one_rate() -> None:
    line = af.probe(1000.0, 650.0, 0.8, 3.0, 400)
    assert "engine mean step" in line and "model mean step" in line
    without = af.probe(1000.0, 650.0, 0.8, 3.0, 400, tail=replace(DEFAULT, batch_spread=0.0))
    # The engine side is the same run; only the model's TPOT tail moves.
    assert line.split("; model")[0] == without.split("; model")[0]
    assert line != without
