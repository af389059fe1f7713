"""bench/tpot_tail_fidelity.py: its classes, the predictor's share per class, the summary."""

from __future__ import annotations

import math

import pytest

from bench import tpot_tail_fidelity as fid
from tierscale_predictor import latency, profiles


def test_answers_fall_in_vllms_one_two_five_classes_from_two_tokens() -> None:
    assert fid.class_of(1) is None  # no decode step, no TPOT
    assert [fid.class_of(n) for n in (2, 4, 5, 9, 10, 199, 200, 2047)] == [
        2,
        3,
        5,
        5,
        10,
        100,
        200,
        500,
    ]


def test_each_class_is_labelled_with_its_lengths() -> None:
    assert [fid.class_label(lo) for lo in (2, 3, 5, 500)] == ["2", "3-4", "5-9", "500+"]


def _load(rate_rps: float) -> tuple[latency.LatencyModel, latency._Load, latency.WorkloadShape]:
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    shape = latency.WorkloadShape(2200.0, 17.0, 13000.0, 99.0)
    busy = rate_rps * latency.work_s_of_shape(model, shape)
    return model, latency._load(model, rate_rps, busy, shape), shape


def test_the_predictors_share_per_class_falls_with_the_bar_and_the_answers_length() -> None:
    model, load, shape = _load(5.0)
    assert fid.model_exceed(model, load, shape, 1.0, 0.0) == 1.0  # below any step
    assert fid.model_exceed(model, load, shape, 1.0, 10.0) == pytest.approx(0.0, abs=1e-12)
    bars = [fid.model_exceed(model, load, shape, 1.0, s) for s in (0.03, 0.06, 0.12)]
    assert bars[0] > bars[1] > bars[2] > 0.0
    # One long prompt landing in a 2-token answer's only decode step is its whole TPOT; a
    # 60-token answer spreads the same prompt over 59 steps.
    assert fid.model_exceed(model, load, shape, 1.0, 0.06) > fid.model_exceed(
        model, load, shape, 59.0, 0.06
    )


def _point(
    busy: float, model_s: float, engine_s: float, classes: tuple[fid.ClassPoint, ...]
) -> fid.Point:
    return fid.Point(
        tier="gen-s1-000/chat-0",
        output_mean=17.0,
        busy_frac=busy,
        engine_tpot_s={97.5: engine_s, 99.5: 2 * engine_s},
        model_tpot_s={97.5: model_s, 99.5: model_s},
        classes=classes,
    )


def test_the_summary_reads_log_ratios_per_load_and_per_class() -> None:
    points = [
        _point(0.2, 0.04, 0.02, (fid.ClassPoint(2, 300, 0.048, 0.098),)),
        _point(0.6, 0.02, 0.02, (fid.ClassPoint(2, 300, 0.098, 0.048),)),
    ]
    assert points[0].log_ratio(97.5) == pytest.approx(math.log(2.0))
    lines = fid.summary(points)
    # p97.5: the model twice the engine at 0.2, equal at 0.6; p99.5: equal, then half
    assert "| 0.2 | 1 | +0.69 / +0.69 / +0.69 | +0.00 / +0.00 / +0.00 |" in lines
    assert "| 0.6 | 1 | +0.00 / +0.00 / +0.00 | -0.69 / -0.69 / -0.69 |" in lines
    assert "| all | 2 | +0.07 / +0.35 / +0.62 | -0.62 / -0.35 / -0.07 |" in lines
    # engine and model medians (0.048 + 0.098) / 2; log ratios +-log(0.1 / 0.05), p10 to p90
    assert "| 2 | 2 | 0.0730 | 0.0730 | -0.55 / +0.00 / +0.55 |" in lines
    assert not any(line.startswith("| 3-4") for line in lines)


def test_a_tier_is_measured_on_the_engine_end_to_end() -> None:
    seed, index, tier = fid.tiers([7], 2, 1)[0]
    points = fid.measure_tier(seed, index, tier, (0.3,), 600)
    assert len(points) == 1
    point = points[0]
    assert point.tier == f"gen-s{seed}-{index:03d}/{tier}"
    assert 0.0 < point.engine_tpot_s[97.5] <= point.engine_tpot_s[99.5]
    assert 0.0 < point.model_tpot_s[97.5] <= point.model_tpot_s[99.5]
    assert all(c.requests >= fid.MIN_CLASS_REQUESTS for c in point.classes)
    assert all(
        0.0 <= c.engine_exceed <= 1.0 and 0.0 <= c.model_exceed <= 1.0 for c in point.classes
    )
