"""The policy registry: one table names every policy, and every row builds that policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from tierscale_sim import runner, scenario
from tierscale_sim.policies import registry

TWO_TIERS = """
name: two
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
  rate: {kind: constant, rate_rps: 4}
  duration_s: 60
  tokens: {prompt_mean: 200, output_mean: 40}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> runner.Setup:
    path: Path = tmp_path_factory.mktemp("registry") / "two.yaml"
    path.write_text(TWO_TIERS)
    return runner.prepare(scenario.load_scenario(path), path)


def test_a_scenario_may_name_every_registered_policy(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(TWO_TIERS + f"policies: [{', '.join(registry.POLICIES)}]\n")
    assert scenario.load_scenario(path).policies == list(registry.POLICIES)


def test_every_hindsight_baseline_has_its_search_and_nothing_else_does() -> None:
    hindsight = {name for name, entry in registry.POLICIES.items() if entry.hindsight}
    assert hindsight == set(runner.HINDSIGHT_SEARCHES)
    assert hindsight == {"static", "oracle", "hpa-tuned", "keda-tuned"}


@pytest.mark.parametrize("name", registry.POLICY_NAMES)
def test_every_row_builds_the_policy_it_names(setup: runner.Setup, name: str) -> None:
    workload = runner.build_workload(setup, seed=0)
    keys = [t.key for t in setup.tiers]
    context = registry.PolicyContext(
        tiers=tuple(setup.tiers),
        profiles_by_model=setup.profiles_by_model,
        budget_gpus=None,
        control_interval_s=setup.spec.control_interval_s,
        workload=workload,
        initial_replicas_by_pool=dict.fromkeys(keys, 1),
        e2e_slo_s_by_tier=dict.fromkeys(keys, 10.0),
        seed=0,
        capacity_rps_by_tier=lambda: dict.fromkeys(keys, 5.0),
    )
    policy = registry.POLICIES[name].build(context)
    assert policy.name == name
    assert policy.instant_scaling is (name == "oracle")


def test_closed_loop_policies_run_by_name_and_unknown_names_are_refused(
    setup: runner.Setup,
) -> None:
    run = runner.run_policy(setup, "keda", seed=0)
    assert run.score.policy == "keda"
    with pytest.raises(scenario.ScenarioError, match=r"unknown policy 'magic'; expected one of"):
        runner.run_policy(setup, "magic", seed=0)
