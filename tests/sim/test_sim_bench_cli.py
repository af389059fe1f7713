"""`tierscale bench` end to end on a tiny scenario, and exit 2 on bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from tierscale_sim import bench_cli as bench

TINY = """
name: tiny
description: two tiers, two minutes of Poisson load
models: {m: {profile: llama-3.1-8b-h100}}
tiers:
  - name: fast
    spec:
      model: m
      slo: {ttft: 500ms, tpot: 50ms}
      priority: 2
      pool: {deployment: vllm-fast, minReplicas: 1, maxReplicas: 4}
      scaling: {coldStart: 30s}
  - name: slow
    spec:
      model: m
      slo: {ttft: 5s, tpot: 200ms}
      priority: 1
      pool: {deployment: vllm-slow, minReplicas: 1, maxReplicas: 4}
      scaling: {coldStart: 30s}
workload:
  rate: {kind: step, levels: [[0, 10], [60, 40]]}
  duration_s: 120
  tier_mix: {fast: 0.5, slow: 0.5}
  tokens: {prompt_mean: 800, output_mean: 100, dist: exponential}
policies: [tierscale, isolated, hpa, keda, static, oracle]
static: {scale_factors: [1.0]}
sweep: {rate_multipliers: [0.5, 1.0], attainment_target: 0.9}
seeds: 1
"""


def _args(tmp_path: Path, scenario: Path, **extra: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "scenario": scenario,
        "policies": None,
        "seeds": None,
        "sweep": False,
        "trace_dir": str(tmp_path),
        "out": tmp_path / "out",
        "executor": "serial",
        "jobs": None,
        "generate": None,
        "seed": 0,
        "ray_address": None,
    }
    base.update(extra)
    return argparse.Namespace(**base)


def test_bench_writes_table_json_markdown_and_plots(tmp_path: Path) -> None:
    scn = tmp_path / "tiny.yaml"
    scn.write_text(TINY)
    code = bench.run(_args(tmp_path, scn, policies="hpa,static,oracle", sweep=True))
    assert code == 0
    out = tmp_path / "out"
    data = json.loads((out / "results.json").read_text())
    assert {r["policy"] for r in data["runs"]} == {"hpa", "static", "oracle"}
    assert len(data["runs"]) == 3 * 2
    run = data["runs"][0]
    assert set(run["tiers"]["default/fast"]) >= {"attainment", "ttft_p99_s", "tpot_p50_s"}
    assert data["summaries"]["oracle"]["gpu_hours_vs_oracle"]["mean"] == pytest.approx(1.0)
    assert data["summaries"]["hpa"]["sweep_goodput_rps"] is not None
    assert "| policy |" in (out / "results.md").read_text()
    for name in ("gpu_hours.png", "replicas_over_time.png", "attainment_vs_load.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        (TINY.replace("ttft: 500ms", "ttft: soon"), {}, "tiers.0.spec.slo.ttft: Invalid value"),
        (TINY, {"policies": "hpa,magic"}, "--policies: unknown"),
        (TINY, {"seeds": 0}, "--seeds"),
        (TINY.replace("sweep:", "#"), {"sweep": True}, "needs a `sweep:` section"),
        (
            TINY.replace(
                "  rate: {kind: step, levels: [[0, 10], [60, 40]]}\n  duration_s: 120",
                "  trace: {path: '${TIERSCALE_TRACE_DIR}/none.csv'}",
            ).replace("  tokens: {prompt_mean: 800, output_mean: 100, dist: exponential}\n", ""),
            {},
            "cannot open",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: dict[str, object],
    message: str,
) -> None:
    scn = tmp_path / "bad.yaml"
    scn.write_text(text)
    assert bench.run(_args(tmp_path, scn, **extra)) == 2
    assert message in capsys.readouterr().err


def test_report_renders_from_results_and_marks_missing_scenarios(tmp_path: Path) -> None:
    from bench import benchmarks_doc

    scn = tmp_path / "s3-azure-code.yaml"
    scn.write_text(TINY.replace("name: tiny", "name: s3-azure-code"))
    out = tmp_path / "bench" / "s3-azure-code"
    assert bench.run(_args(tmp_path, scn, policies="hpa,oracle", out=out)) == 0
    text = benchmarks_doc.render(tmp_path / "bench")
    assert "### s3-azure-code" in text
    assert "| hpa |" in text
    assert "_not run yet_" in text  # the other scenarios


TRACE_SCENARIO = """
name: traced
models: {m: {profile: llama-3.1-8b-h100}}
tiers:
  - name: fast
    spec:
      model: m
      slo: {ttft: 500ms, tpot: 50ms}
      pool: {deployment: vllm-fast, minReplicas: 1, maxReplicas: 4}
  - name: slow
    spec:
      model: m
      slo: {ttft: 5s, tpot: 200ms}
      pool: {deployment: vllm-slow, minReplicas: 1, maxReplicas: 4}
workload:
  trace: {path: '${TIERSCALE_TRACE_DIR}/t.csv'}
WORKLOAD
policies: [hpa]
seeds: 1
"""


def _trace_case(tmp_path: Path, workload: str) -> Path:
    rows = "\n".join(f"{i * 0.05:.2f},{200 + i % 50},{20}" for i in range(2400))
    (tmp_path / "t.csv").write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + rows)
    scn = tmp_path / "traced.yaml"
    scn.write_text(TRACE_SCENARIO.replace("WORKLOAD", workload))
    return scn


def test_a_trace_workload_takes_mix_phases(tmp_path: Path) -> None:
    scn = _trace_case(
        tmp_path,
        "  mix_phases:\n"
        "    - {start_s: 0, mix: {fast: 1.0, slow: 0.0}}\n"
        "    - {start_s: 60, mix: {fast: 0.0, slow: 1.0}}",
    )
    assert bench.run(_args(tmp_path, scn)) == 0
    tiers = json.loads((tmp_path / "out" / "results.json").read_text())["runs"][0]["tiers"]
    assert tiers["default/fast"]["requests"] == 1200  # arrivals before 60 s
    assert tiers["default/slow"]["requests"] == 1200


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ("", "workload.tier_mix: required: the trace"),
        (
            "  tier_mix: {fast: 1}\n  arrivals: gamma",
            "workload.arrivals: only for a synthetic workload (`rate`)",
        ),
        ("  tier_mix: {fast: 1}\n  cv: 3", "workload.cv: only for a synthetic workload"),
        ("  tier_mix: {fast: 1}\n  duration_s: 60", "trace.start_s and trace.duration_s"),
        (
            "  mix_phases: [{start_s: 10, mix: {fast: 1}}]",
            "workload.mix_phases: phases must start at 0",
        ),
        ("  tier_mix: {fast: 0}", "shares must be >= 0 and not all 0"),
    ],
)
def test_trace_mistakes_exit_2_with_the_field_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workload: str, message: str
) -> None:
    assert bench.run(_args(tmp_path, _trace_case(tmp_path, workload))) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_progress_is_one_line_per_run_when_output_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scn = tmp_path / "tiny.yaml"
    scn.write_text(TINY)
    assert bench.run(_args(tmp_path, scn, policies="hpa,keda")) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert [line.split(":")[0] for line in lines] == [
        "[1/2] hpa seed 0 load x1",
        "[2/2] keda seed 0 load x1",
    ]
    assert all("elapsed 0:" in line and "ETA 0:" in line for line in lines)
    assert all("worst tier" in line and "GPU-h" in line for line in lines)


def test_the_planners_reasons_are_in_the_results_and_on_the_plots(tmp_path: Path) -> None:
    scn = tmp_path / "tiny.yaml"
    scn.write_text(TINY)
    assert bench.run(_args(tmp_path, scn, policies="tierscale,hpa")) == 0
    out = tmp_path / "out"
    runs = {r["policy"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert runs["hpa"]["decisions"] is None
    decisions = runs["tierscale"]["decisions"]
    ticks = len(decisions["t_s"])
    assert ticks == 120 // 15
    fast = decisions["by_tier"]["default/fast"]
    for column in ("reason", "desired_replicas", "ready_replicas", "observed_rate_rps"):
        assert len(fast[column]) == ticks
    assert set(fast["reason"]) <= {
        "Steady",
        "ForecastUp",
        "ScaleDown",
        "Stabilized",
        "Spillover",
        "SLOBreach",
        "AtMaxReplicas",
        "AtMinReplicas",
    }
    assert any(v is not None for v in fast["predicted_ttft_s"])
    assert any(v is not None for v in fast["planned_rate_rps"])
    # The lengths the capacities were computed for, next to the window's (prompts of
    # mean 800 tokens), and the bias learned from breaches.
    planned = [v for v in fast["planned_prompt_tokens_mean"] if v is not None]
    observed = [v for v in fast["observed_prompt_tokens_mean"] if v is not None]
    assert len(planned) == len(observed) == ticks
    assert all(500 < v < 1200 for v in planned + observed)
    assert all(
        v is not None and v >= v_mean
        for v, v_mean in zip(fast["planned_prompt_tokens_p99"], planned, strict=True)
    )
    assert all(v is not None and v >= 1.0 for v in fast["bias"])
    # The gauges a learned batch limit reads; none learned on an engine at its default.
    assert all(v is not None and v >= 0.0 for v in fast["observed_running_requests"])
    assert all(v is not None and v >= 0.0 for v in fast["observed_waiting_requests"])
    assert fast["batch_limit"] == [None] * ticks
    t0, tier, reason, message = decisions["messages"][0]
    assert (t0, tier, reason) == (15.0, "default/fast", fast["reason"][0])
    assert message
    assert (out / "decisions_tierscale.png").stat().st_size > 1000
    assert not (out / "decisions_hpa.png").exists()
