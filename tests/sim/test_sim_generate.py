"""The scenario generator: seeded, pure, valid, and spanning the dimensions it promises;
the generalisation benchmark's summary and its command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from tierscale_sim import bench_cli, generalisation, generate, runner, scenario
from tierscale_sim.generate import Generated
from tierscale_sim.runner import PolicyRun
from tierscale_sim.scoring import RunScore, TierScore

from tierscale_predictor.profiles import load_profile

DRAWS = generate.generate(60, 99)


def test_the_same_seed_draws_the_same_scenarios_whatever_n() -> None:
    assert generate.generate(3, 99) == DRAWS[:3]
    assert generate.generate_one(99, 7) == DRAWS[7]
    assert generate.generate(3, 98) != DRAWS[:3]


def test_draws_span_every_dimension_within_their_bounds() -> None:
    tiers = {len(g.spec.tiers) for g in DRAWS}
    assert tiers == {2, 3, 4, 5, 6}
    assert {g.tags["arrival"] for g in DRAWS} == set(generate.ARRIVALS)
    assert any(g.tags["mismatch"] for g in DRAWS)
    assert any(not g.tags["mismatch"] for g in DRAWS)
    assert any(g.spec.budget_gpus for g in DRAWS)
    assert any(g.spec.workload.mix_phases for g in DRAWS)
    assert any(g.spec.workload.arrivals == "gamma" for g in DRAWS)
    colds = {g.tags["cold_start_s"] for g in DRAWS}
    assert min(colds) == 0 and max(colds) == 300
    dists = {t.sim.tokens.dist for g in DRAWS for t in g.spec.tiers if t.sim.tokens}
    assert dists == {"exponential", "lognormal"}
    for g in DRAWS:
        assert g.spec.workload.duration_s is not None
        assert 20 * 60 <= g.spec.workload.duration_s <= 40 * 60
        assert g.tags["peak_rate_rps"] <= generate.MAX_PEAK_RATE_RPS + 1e-6
        assert g.spec.warmup_s < g.spec.workload.duration_s
        if g.spec.budget_gpus is not None:
            assert g.spec.budget_gpus >= sum(t.spec.pool.min_replicas for t in g.spec.tiers)
    mismatched = [g.spec.models["llm"].reality for g in DRAWS if g.tags["mismatch"]]
    assert all(0.7 <= r.step_cost_x <= 1.5 for r in mismatched)
    assert any(r.max_num_seqs for r in mismatched)


def test_every_draw_is_written_as_a_scenario_file_that_loads_back_the_same(
    tmp_path: Path,
) -> None:
    setups = generalisation.write_scenarios(DRAWS[:8], tmp_path)
    for g, setup in zip(DRAWS[:8], setups, strict=True):
        assert scenario.load_scenario(setup.path) == g.spec
        assert yaml.safe_load(setup.path.read_text())["name"] == g.spec.name


def _run(policy: str, met: bool, gpu_hours: float) -> PolicyRun:
    tier = TierScore("d/a", 100, 0, 0.99 if met else 0.5, 0.95, None, None, None, None, None, None)
    score = RunScore(policy, 0, 1.0, {"d/a": tier}, 100, 0, 0.9, 1.0, 1.0, gpu_hours, 1, 1, 2, 0.5)
    return PolicyRun(score, ())


def test_the_summary_counts_scenarios_met_and_gpu_hours_against_the_oracle() -> None:
    runs = {
        "a": {"oracle": _run("oracle", True, 2.0), "x": _run("x", True, 3.0)},
        "b": {"oracle": _run("oracle", False, 1.0), "x": _run("x", False, 1.0)},
        "c": {"oracle": _run("oracle", True, 4.0), "x": _run("x", False, 2.0)},
    }
    stats, oracle_met = generalisation.summarize(runs, ["x", "oracle"])
    assert oracle_met == pytest.approx(2 / 3)
    assert stats["x"].all_met_frac == pytest.approx(1 / 3)
    assert stats["x"].met_where_oracle_met_frac == pytest.approx(1 / 2)
    assert stats["x"].vs_oracle is not None
    assert stats["x"].vs_oracle["median"] == pytest.approx(1.0)
    assert stats["x"].vs_oracle["max"] == pytest.approx(1.5)
    assert stats["x"].vs_oracle["min"] == pytest.approx(0.5)


TINY = """
name: gen-s5-000
models: {llm: {profile: llama-3.1-8b-h100}}
tiers:
  - name: fast
    spec:
      model: llm
      slo: {ttft: 500ms, tpot: 50ms}
      pool: {deployment: vllm-fast, minReplicas: 1, maxReplicas: 3}
      scaling: {coldStart: 10s}
workload:
  rate: {kind: constant, rate_rps: 4}
  duration_s: 60
  tokens: {prompt_mean: 300, output_mean: 30}
"""


def _draw_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator draws the TINY scenario, as many times as asked."""
    spec = scenario.ScenarioSpec.model_validate(yaml.safe_load(TINY))
    tiny = Generated(spec, {"arrival": "poisson", "mismatch": None})
    monkeypatch.setattr(generate, "generate", lambda count, seed: [tiny] * count)


def _generated_args(tmp_path: Path, **overrides: object) -> argparse.Namespace:
    """`tierscale bench --generate 1 --seed 5 --policies hpa,oracle --executor serial`."""
    args = argparse.Namespace(
        scenario=None,
        generate=1,
        seed=5,
        policies="hpa,oracle",
        seeds=None,
        sweep=False,
        trace_dir=str(tmp_path),
        out=tmp_path / "gen",
        executor="serial",
        jobs=None,
        ray_address=None,
    )
    return argparse.Namespace(**{**vars(args), **overrides})


def test_generate_on_the_command_line_writes_scenarios_summary_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _draw_tiny(monkeypatch)
    args = _generated_args(tmp_path)
    assert bench_cli.run(args) == 0
    out = tmp_path / "gen"
    summary = json.loads((out / "generalisation.json").read_text())
    assert summary["seed"] == 5
    assert set(summary["summary"]) == {"hpa", "oracle"}
    assert summary["summary"]["oracle"]["gpu_hours_vs_oracle"]["median"] == pytest.approx(1.0)
    assert (out / "scenarios" / "gen-s5-000.yaml").is_file()
    assert (out / "runs" / "gen-s5-000.json").is_file()
    assert "| hpa |" in (out / "generalisation.md").read_text()
    assert (out / "generalisation.png").stat().st_size > 1000
    err = capsys.readouterr().err
    assert "[2/2] gen-s5-000 " in err
    assert "ETA" in err
    # Again on the files the first run wrote (an A/B of a predictor change does this).
    again = argparse.Namespace(
        **{**vars(args), "out": tmp_path / "again", "scenarios_from": out / "scenarios"}
    )
    assert bench_cli.run(again) == 0
    assert (
        f"--scenarios-from {out / 'scenarios'}"
        in (tmp_path / "again" / "generalisation.md").read_text()
    )


def test_a_run_that_fails_is_recorded_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _draw_tiny(monkeypatch)
    real = runner.run_policy

    def flaky(setup: runner.Setup, name: str, *args: object, **kwargs: object) -> PolicyRun:
        if name == "hpa":
            raise RuntimeError("boom")
        return real(setup, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "run_policy", flaky)
    args = _generated_args(tmp_path)
    assert bench_cli.run(args) == 0
    summary = json.loads((tmp_path / "gen" / "generalisation.json").read_text())
    assert summary["summary"]["hpa"]["all_tiers_met_frac"] == 0.0
    assert "RuntimeError: boom" in summary["scenarios"][0]["policies"]["hpa"]["error"]
    assert summary["summary"]["oracle"]["scenarios"] == 1
    assert "FAILED: RuntimeError: boom" in capsys.readouterr().err


def test_stored_scenarios_replace_the_draws_by_the_files_an_earlier_run_wrote(
    tmp_path: Path,
) -> None:
    # An A/B of a predictor change must run the baseline's files: the generator sizes
    # scenarios with the predictor, so drawing them again would change them too.
    generalisation.write_scenarios(DRAWS[:3], tmp_path)
    folder = tmp_path / "scenarios"
    edited = folder / f"{DRAWS[1].spec.name}.yaml"
    data = yaml.safe_load(edited.read_text())
    data["description"] = "edited by the baseline run"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    stored = generalisation.stored(DRAWS[:3], folder)
    assert [g.spec for g in stored] == [
        DRAWS[0].spec,
        DRAWS[1].spec.model_copy(update={"description": "edited by the baseline run"}),
        DRAWS[2].spec,
    ]
    assert [g.tags for g in stored] == [g.tags for g in DRAWS[:3]]


def test_a_missing_stored_scenario_is_a_clear_error(tmp_path: Path) -> None:
    generalisation.write_scenarios(DRAWS[:1], tmp_path)
    with pytest.raises(scenario.ScenarioError, match="no gen-s99-001.yaml; it must be"):
        generalisation.stored(DRAWS[:2], tmp_path / "scenarios")


def test_scenarios_from_is_only_for_generated_runs(tmp_path: Path) -> None:
    # The generated run of the command-line test above, turned into a file run.
    args = _generated_args(tmp_path, scenario=tmp_path / "x.yaml", generate=None)
    assert bench_cli.run(argparse.Namespace(**{**vars(args), "scenarios_from": tmp_path})) == 2


def test_the_draws_do_not_move_with_the_planners_tail_constants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A predictor change is judged on the scenarios it was judged on before: the draws
    are sized with `generate.SIZING_TAIL`, not with the planner's current constants."""
    from dataclasses import replace

    from tierscale_predictor import latency

    before = [g.spec.model_dump(mode="json") for g in generate.generate(6, 98)]
    monkeypatch.setattr(
        latency,
        "DEFAULT_TAIL",
        replace(latency.DEFAULT_TAIL, tpot_interference=4.0, busy_limit_frac=0.5),
    )
    assert (
        latency.LatencyModel.from_profile(load_profile("llama-3.1-8b-h100")).tail.busy_limit_frac
        == 0.5
    )  # the planner's model did change
    after = [g.spec.model_dump(mode="json") for g in generate.generate(6, 98)]
    assert after == before


def test_a_generated_pool_runs_max_model_len_at_its_prompt_limit() -> None:
    for g in DRAWS[:10]:
        for t, tier in zip(g.spec.tiers, scenario.tiers_of(g.spec), strict=True):
            tokens = t.sim.tokens or g.spec.workload.tokens
            assert tokens is not None and tokens.prompt_max == generate.PROMPT_MAX_TOKENS
            assert tier.pool.max_model_len == generate.PROMPT_MAX_TOKENS
