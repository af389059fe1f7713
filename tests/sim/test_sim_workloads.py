"""Workload generators: rates, mixes, scaling and clear errors on bad traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tierscale_sim.workloads import (
    MixPhase,
    RateProfile,
    TokenSpec,
    TraceReplay,
    WorkloadError,
    arrivals_from_profile,
    load_trace_csv,
    replay_trace,
    synthetic_workload,
)


def test_poisson_and_bursty_arrivals_hit_the_rate() -> None:
    rng = np.random.default_rng(0)
    poisson = arrivals_from_profile(RateProfile.constant(50.0, 600.0), 600.0, rng)
    bursty = arrivals_from_profile(RateProfile.constant(50.0, 600.0), 600.0, rng, cv=3.0)
    assert poisson.size == pytest.approx(30_000, rel=0.03)
    assert bursty.size == pytest.approx(30_000, rel=0.15)
    cv = lambda a: np.diff(a).std() / np.diff(a).mean()  # noqa: E731
    assert cv(poisson) == pytest.approx(1.0, abs=0.05)
    assert cv(bursty) > 2.0


def test_step_profile_changes_rate() -> None:
    rng = np.random.default_rng(1)
    prof = RateProfile.step([(0.0, 10.0), (300.0, 40.0)], 600.0)
    a = arrivals_from_profile(prof, 600.0, rng)
    assert (a < 300).sum() == pytest.approx(3000, rel=0.06)
    assert (a >= 300).sum() == pytest.approx(12000, rel=0.04)


def test_mix_inversion_swaps_tier_shares() -> None:
    keys = ["a/x", "a/y"]
    w = synthetic_workload(
        keys,
        RateProfile.constant(40.0, 400.0),
        400.0,
        [MixPhase(0.0, {"a/x": 0.8, "a/y": 0.2}), MixPhase(200.0, {"a/x": 0.2, "a/y": 0.8})],
        {k: TokenSpec(100, 10) for k in keys},
        np.random.default_rng(2),
    )
    early = w.tier_index[w.arrival_s < 200]
    late = w.tier_index[w.arrival_s >= 200]
    assert (early == 0).mean() == pytest.approx(0.8, abs=0.03)
    assert (late == 0).mean() == pytest.approx(0.2, abs=0.03)
    assert np.all(np.diff(w.arrival_s) >= 0)


def test_trace_replay_time_scales_to_a_target_peak(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    rows = "\n".join(f"{i * 0.5},{100 + i},{10}" for i in range(1000))
    p.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + rows + "\n")
    trace = load_trace_csv(p)
    w = replay_trace(
        trace,
        TraceReplay(peak_rate_rps=8.0),
        ["d/t"],
        [MixPhase(0.0, {"d/t": 1.0})],
        np.random.default_rng(0),
    )
    assert w.peak_rate_rps(60.0) == pytest.approx(8.0, rel=0.05)
    assert w.num_requests == 1000
    doubled = replay_trace(
        trace,
        TraceReplay(rate_scale=2.0),
        ["d/t"],
        [MixPhase(0.0, {"d/t": 1.0})],
        np.random.default_rng(0),
    )
    assert doubled.num_requests == 2000


def test_bad_trace_names_file_line_and_expectation(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,12,x\n")
    with pytest.raises(WorkloadError, match=r"bad.csv line 2: expected numbers"):
        load_trace_csv(p)
    q = tmp_path / "hdr.csv"
    q.write_text("time,prompt,output\n")
    with pytest.raises(WorkloadError, match="expected header"):
        load_trace_csv(q)
