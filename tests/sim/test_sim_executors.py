"""Runs fanned out over processes or Ray give exactly the serial results (bit for bit)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from tierscale_sim import bench, executors, runner, scenario

SMALL = """
name: small
models: {m: {profile: llama-3.1-8b-h100}}
tiers:
  - name: fast
    spec:
      model: m
      slo: {ttft: 500ms, tpot: 50ms}
      priority: 2
      pool: {deployment: vllm-fast, minReplicas: 1, maxReplicas: 4}
      scaling: {coldStart: 20s}
  - name: slow
    spec:
      model: m
      slo: {ttft: 5s, tpot: 200ms}
      pool: {deployment: vllm-slow, minReplicas: 1, maxReplicas: 4}
      scaling: {coldStart: 20s}
workload:
  rate: {kind: step, levels: [[0, 6], [40, 30]]}
  duration_s: 90
  tier_mix: {fast: 0.5, slow: 0.5}
  tokens: {prompt_mean: 600, output_mean: 60, dist: exponential}
static: {scale_factors: [1.0]}
oracle: {headroom_factors: [1.0]}
tuning: {hpa_targets: [0.3, 0.7], keda_targets: [1, 5]}
"""
POLICIES = ["tierscale", "keda", "keda-tuned", "static", "oracle"]


def _setup(tmp_path: Path) -> runner.Setup:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return runner.prepare(scenario.load_scenario(path), path)


def _results(tmp_path: Path, executor: str, jobs: int) -> dict[str, Any]:
    seen: list[tuple[str, int]] = []

    def progress(done: executors.Done, n: int, total: int) -> None:
        assert total == len(POLICIES) * 2
        seen.append((done.task.policy, n))

    result = bench.run_bench(_setup(tmp_path), POLICIES, [0, 1], [1.0], progress, executor, jobs)
    assert sorted(n for _, n in seen) == list(range(1, len(POLICIES) * 2 + 1))
    out = bench.to_json(result)
    out.pop("wall_s_by_policy")
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _results(tmp_path_factory.mktemp("serial"), "serial", 1)


def test_processes_give_the_serial_results_bit_for_bit(
    tmp_path: Path, serial: dict[str, Any]
) -> None:
    parallel = _results(tmp_path, "process", 2)
    assert parallel == serial  # every float of every run, tick and decision
    assert [r["policy"] for r in parallel["runs"]] == POLICIES * 2


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the optional `ray` extra is not installed (pip install 'tierscale-sim[ray]')",
)
def test_a_local_ray_gives_the_serial_results_bit_for_bit(
    tmp_path: Path, serial: dict[str, Any]
) -> None:
    import ray  # type: ignore[import-not-found, import-untyped, unused-ignore]

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        assert _results(tmp_path, "ray", 1) == serial
    finally:
        ray.shutdown()


def test_an_unknown_executor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(executors.ExecutorError, match=r"--executor: expected one of"):
        executors.run_tasks([_setup(tmp_path)], [], "threads")
