"""Trace parsing, synthetic patterns, tier mix and the bounds of a schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tierscale_testbed.loadgen import workload


def _trace(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + rows)
    return path


def test_trace_rows_are_read_sorted_and_shifted_to_start_at_zero(tmp_path: Path) -> None:
    path = _trace(tmp_path, "5.0,100,10\n3.0,50,0\n9.5,7,2\n")
    assert workload.read_trace(path) == [
        workload.Arrival(0.0, 50, 1),  # zero output tokens become one: vLLM emits >= 1
        workload.Arrival(2.0, 100, 10),
        workload.Arrival(6.5, 7, 2),
    ]
    assert workload.read_trace(path, start_s=4.0)[0] == workload.Arrival(0.0, 100, 10)


def test_a_trace_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,prompt\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        workload.read_trace(path)


def test_schedule_is_cut_by_count_and_by_scaled_time() -> None:
    arrivals = [workload.Arrival(float(t), 10, 5) for t in range(100)]
    rng = np.random.default_rng(0)
    by_count = workload.schedule(
        arrivals, mix={"a": 1.0}, bounds=workload.Bounds(7, 1e9), time_scale=1.0, rng=rng
    )
    assert len(by_count) == 7
    by_time = workload.schedule(
        arrivals, mix={"a": 1.0}, bounds=workload.Bounds(1000, 5.0), time_scale=10.0, rng=rng
    )
    assert len(by_time) == 50  # arrivals 0..49 s land before 5 s at 10x
    assert by_time[-1].send_at_s == pytest.approx(4.9)


def test_tier_mix_is_respected_and_seeded() -> None:
    arrivals = [workload.Arrival(0.0, 1, 1)] * 4000
    mix = workload.parse_mix("gold=1,silver=3")
    bounds = workload.Bounds(10_000, 1.0)
    a = workload.schedule(
        arrivals, mix=mix, bounds=bounds, time_scale=1, rng=np.random.default_rng(1)
    )
    b = workload.schedule(
        arrivals, mix=mix, bounds=bounds, time_scale=1, rng=np.random.default_rng(1)
    )
    assert a == b
    gold = sum(s.tier == "gold" for s in a) / len(a)
    assert 0.22 < gold < 0.28


def test_bad_mix_and_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        workload.parse_mix("gold")
    with pytest.raises(ValueError):
        workload.parse_mix("gold=0")
    with pytest.raises(ValueError):
        workload.Bounds(0, 1.0)


def test_poisson_rate_is_close_to_the_requested_rate() -> None:
    arrivals = workload.poisson_arrivals(
        20.0, duration_s=200.0, prompt_tokens=1, output_tokens=1, rng=np.random.default_rng(3)
    )
    assert 3600 < len(arrivals) < 4400
    assert all(0 < a.at_s < 200.0 for a in arrivals)


def test_step_pattern_changes_rate_per_step() -> None:
    arrivals = workload.step_arrivals(
        [1.0, 0.0, 50.0],
        step_s=10.0,
        prompt_tokens=1,
        output_tokens=1,
        rng=np.random.default_rng(4),
    )
    assert not [a for a in arrivals if 10.0 <= a.at_s < 20.0]
    assert len([a for a in arrivals if a.at_s >= 20.0]) > 10 * len(
        [a for a in arrivals if a.at_s < 10]
    )
