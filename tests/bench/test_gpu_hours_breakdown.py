"""bench/gpu_hours_breakdown.py: the parts of tierscale's GPU-hours (the engine probe faked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tierscale_sim import bench as sim_bench
from tierscale_sim import generalisation, generate, runner

from bench import gpu_hours_breakdown as gbd


def record(**overrides: Any) -> gbd.TierRecord:
    """One tier, two decisions half an hour apart: observed 10 req/s, planned 15, a true
    capacity of 10 per replica, the planner's 5, 4 Ready replicas."""
    base: dict[str, Any] = {
        "t_s": [1800.0, 3600.0],
        "ready_replicas": [4, 4],
        "observed_rate_rps": [10.0, 10.0],
        "planned_rate_rps": [15.0, 15.0],
        "capacity_rps_per_replica": [5.0, 5.0],
        "true_capacity_rps": 10.0,
        "min_replicas": 1,
        "gpus_per_replica": 1,
    }
    base.update(overrides)
    return gbd.TierRecord(**base)


def test_each_part_is_the_step_it_names() -> None:
    parts = gbd.breakdown([record()], gpu_hours=4.5).parts()
    # need 1 replica (10 / 10); the forecast's 15 needs 2 at the true capacity, 3 at the
    # planner's; 4 Ready; 4 Ready GPU-hours of 4.5 in all.
    assert parts == pytest.approx(
        {"need": 1.0, "margins": 1.0, "capacity_model": 1.0, "held": 1.0, "loading": 0.5}
    )
    assert sum(parts.values()) == pytest.approx(4.5)


def test_an_optimistic_model_and_lagging_replicas_are_negative() -> None:
    parts = gbd.breakdown(
        [record(capacity_rps_per_replica=[20.0, 20.0], ready_replicas=[0, 1])], gpu_hours=1.0
    ).parts()
    assert parts["capacity_model"] == pytest.approx(-1.0)  # 1 planned where 2 are needed
    assert parts["held"] == pytest.approx(-0.5)  # Ready 0 then 1 against a plan of 1
    assert sum(parts.values()) == pytest.approx(1.0)


def test_gpus_per_replica_and_minimums_count() -> None:
    parts = gbd.breakdown(
        [record(gpus_per_replica=2, min_replicas=3, ready_replicas=[3, 3])], gpu_hours=6.0
    ).parts()
    assert parts == pytest.approx(
        {"need": 6.0, "margins": 0.0, "capacity_model": 0.0, "held": 0.0, "loading": 0.0}
    )


def test_a_step_the_decision_did_not_make_counts_as_held() -> None:
    parts = gbd.breakdown(
        [record(capacity_rps_per_replica=[None, 5.0], planned_rate_rps=[None, 15.0])],
        gpu_hours=4.0,
    ).parts()
    # First half hour: no plan: the observed rate's 1 replica is need, the other 3 held.
    assert parts == pytest.approx(
        {"need": 1.0, "margins": 0.5, "capacity_model": 0.5, "held": 2.0, "loading": 0.0}
    )
    # A planned rate without a planned capacity: no model step, the rest held.
    parts = gbd.breakdown([record(capacity_rps_per_replica=[None, None])], gpu_hours=4.0).parts()
    assert parts == pytest.approx(
        {"need": 1.0, "margins": 1.0, "capacity_model": 0.0, "held": 2.0, "loading": 0.0}
    )


def test_the_fields_read_are_the_ones_the_bench_records() -> None:
    written = {"ready_replicas", *sim_bench._EXPLAINED_NUMBERS}
    read = {"ready_replicas", "observed_rate_rps", "planned_rate_rps", "capacity_rps_per_replica"}
    assert read <= written


def _out_dir(tmp: Path, budget: int | None) -> tuple[Path, list[int]]:
    """A generalisation output with one generated scenario and a made-up tierscale run;
    and its tiers' minReplicas."""
    tmp.mkdir()
    g = generate.generate_one(7, 0)
    generalisation.write_scenarios([g], tmp)
    setup = runner.prepare(g.spec, tmp / "scenarios" / f"{g.spec.name}.yaml")
    by_tier = {
        t.key: {
            "ready_replicas": [2, 2],
            "observed_rate_rps": [1.0, 1.0],
            "planned_rate_rps": [2.0, 2.0],
            "capacity_rps_per_replica": [1.0, 1.0],
        }
        for t in setup.tiers
    }
    run = {"policy": "tierscale", "decisions": {"t_s": [1800.0, 3600.0], "by_tier": by_tier}}
    (tmp / "runs").mkdir()
    (tmp / "runs" / f"{g.spec.name}.json").write_text(json.dumps({"runs": [run]}))
    result = {"all_tiers_met": True, "gpu_hours": 2.5 * len(setup.tiers)}
    report = {
        "scenarios": [
            {
                "scenario": g.spec.name,
                "oracle_met": True,
                "tags": {"budget_gpus": budget},
                "policies": {"tierscale": result, "static": {**result, "gpu_hours": 1.0}},
            }
        ]
    }
    (tmp / "generalisation.json").write_text(json.dumps(report))
    return tmp, [t.pool.min_replicas for t in setup.tiers]


def test_rows_read_a_generalisation_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "capacity_of", lambda setup, i, seqs=None: 2.0)
    out, least = _out_dir(tmp_path / "out", budget=None)
    kept, skipped = gbd.rows(out)
    assert skipped == []
    (row,) = kept
    # Per tier over one hour: need max(min, ceil(1 / 2)), the forecast's ceil(2 / 2) at
    # the true capacity, ceil(2 / 1) at the planner's, 2 Ready; 2.5 GPU-hours per tier.
    need = sum(max(m, 1) for m in least)
    assert row.parts["need"] == pytest.approx(need)
    assert row.parts["loading"] == pytest.approx(0.5 * len(least))
    assert sum(row.parts.values()) == pytest.approx(2.5 * len(least))
    assert (row.tierscale_met, row.static_met, row.static_gpu_hours) == (True, True, 1.0)
    lines = gbd.table(kept)
    assert lines[0].startswith("| scenario | tierscale | static |")
    assert any("static cheaper, both met" in line for line in lines)


def test_budgets_and_unservable_tiers_are_left_out_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "capacity_of", lambda setup, i, seqs=None: 0.0)
    out, _ = _out_dir(tmp_path / "a", budget=None)
    unserved = "a tier no replica of the true engine serves at its target"
    assert gbd.rows(out) == ([], [("gen-s7-000", unserved)])
    out, _ = _out_dir(tmp_path / "b", budget=5)
    assert gbd.rows(out) == ([], [("gen-s7-000", "GPU budget 5")])
    assert gbd.rows(out, include_budgets=True) == ([], [("gen-s7-000", unserved)])
