"""bench/capacity_fidelity.py: its rows, groups and ranking (the engine probe faked)."""

from __future__ import annotations

import numpy as np
import pytest
from tierscale_sim import runner

from bench import capacity_fidelity as fid
from tierscale_predictor import capacity, latency, profiles


def row(regime: str, planner_rps: float, engine_rps: float, *, mismatch: bool = False) -> fid.Row:
    return fid.Row(
        scenario="gen-s1-000",
        tier=f"t{planner_rps}-{engine_rps}",
        mismatch=mismatch,
        regime=regime,
        attainment=0.99,
        ttft_s=1.0,
        tpot_s=0.05,
        prompt_mean=1000.0,
        prompt_p99=5000.0,
        output_mean=200.0,
        planner_rps=planner_rps,
        engine_rps=engine_rps,
    )


def test_the_regime_follows_the_cliff_fraction() -> None:
    assert fid.regime(0.0) == "tail met"
    assert fid.regime(0.4) == "lean"
    assert fid.regime(1.0) == "tail unmet"


def test_a_ratio_needs_both_capacities() -> None:
    assert row("tail met", 2.0, 4.0).ratio == 0.5
    assert row("tail unmet", 2.0, 0.0).ratio is None
    assert row("tail unmet", 0.0, 1.0).ratio is None


def test_the_summary_counts_each_group_apart() -> None:
    rows = [
        row("tail met", 1.0, 1.0),
        row("tail met", 1.5, 1.0),  # optimistic
        row("tail met", 0.5, 1.0),  # pessimistic
        row("tail unmet", 3.0, 0.0),  # the engine serves none
        row("tail met", 1.0, 2.0, mismatch=True),
    ]
    lines = fid.summary(rows)
    modelled = next(line for line in lines if line.startswith("| as modelled | tail met"))
    assert modelled.split(" | ")[2:4] == ["3", "0"]
    assert modelled.endswith("| 1 | 1 |")
    unmet = next(line for line in lines if "tail unmet" in line)
    assert " | 1 | 1 | - | - | - | 0 | 0 |" in unmet
    assert any(line.startswith("| differs (mismatch) | tail met | 1 |") for line in lines)
    assert not any("| lean |" in line for line in lines)


def test_the_most_optimistic_come_first() -> None:
    lines = fid.worst([row("tail met", 1.0, 1.0), row("lean", 4.0, 1.0), row("tail met", 0.5, 1.0)])
    assert "| lean |" in lines[2] and lines[2].endswith("| 4.00 |")
    assert lines[-1].endswith("| 0.50 |")


def test_rows_are_built_for_tiers_with_enough_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "capacity_of", lambda setup, i, seqs=None: 1.0 + i)
    rows = fid.scenario_rows(7, 0)
    assert rows, "gen-s7-000 has tiers with hundreds of requests"
    assert {r.scenario for r in rows} == {"gen-s7-000"}
    for r in rows:
        assert r.planner_rps > 0.0
        assert r.regime in fid.REGIMES
        assert r.prompt_p99 >= r.prompt_mean
    assert [r.engine_rps for r in rows] == sorted(r.engine_rps for r in rows)


def test_bucket_quantiles_interpolate_inside_vllms_buckets() -> None:
    outputs = np.array([1.0] * 10 + [3.0] * 30 + [40.0] * 60)
    quantile = fid.bucket_quantile(outputs)
    assert quantile(0.05) == pytest.approx(0.5)  # rank 5 of the 10 in (0, 1]
    assert quantile(0.25) == pytest.approx(3.5)  # (2, 5]: 15 of its 30
    assert quantile(0.70) == pytest.approx(35.0)  # (20, 50]: 30 of its 60
    assert quantile(1.0) == pytest.approx(50.0)


def test_output_classes_leave_out_requests_with_no_decode_step() -> None:
    classes = fid.output_classes(lambda q: 1.0 if q < 0.5 else 11.0, 4)
    assert classes == ((10.0, 10.0), (0.5, 0.5))
    assert fid.output_classes(lambda q: 1.0, 4) is None


def test_classes_move_only_their_shape_and_only_while_inside() -> None:
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    shape = latency.WorkloadShape(3400.0, 49.0, 16000.0, 310.0)
    other = latency.WorkloadShape(3400.0, 50.0, 16000.0, 310.0)
    slo = latency.SloTarget(1.0, 0.05, 99.5)
    before = (capacity.max_rate_rps(model, slo, shape), capacity.max_rate_rps(model, slo, other))
    short = ((1.0,) * 16, (1.0 / 16,) * 16)  # every answer 2 tokens: one decode step each
    with fid.classes_for(shape, short):
        inside = capacity.max_rate_rps(model, slo, shape)
        assert capacity.max_rate_rps(model, slo, other) == before[1]
    assert inside != pytest.approx(before[0], rel=0.05)
    assert capacity.max_rate_rps(model, slo, shape) == before[0]
