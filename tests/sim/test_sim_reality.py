"""Model mismatch: the engine that plays reality differs from the model policies are given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tierscale_sim import capacity_probe, reality, runner, scenario
from tierscale_sim.replica_port import EngineBackend, Overheads

from tierscale.domain.tiers import Slo
from tierscale_predictor import profiles

PROFILE = profiles.load_profile("llama-3.1-8b-h100")

SCENARIO = """
name: mismatch
models:
  m:
    profile: llama-3.1-8b-h100
    max_num_seqs: 256
    reality: REALITY
tiers:
  - name: fast
    spec:
      model: m
      slo: {ttft: 500ms, tpot: 50ms}
      pool: {deployment: vllm-fast, minReplicas: 1, maxReplicas: 4}
workload:
  rate: {kind: constant, rate_rps: 5}
  duration_s: 60
  tokens: {prompt_mean: 500, output_mean: 50, dist: exponential}
"""


def _setup(tmp_path: Path, reality_yaml: str) -> runner.Setup:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("REALITY", reality_yaml))
    return runner.prepare(scenario.load_scenario(path), path)


def test_step_cost_multipliers_scale_the_true_profile_and_nothing_else() -> None:
    spec = scenario.RealitySpec(step_cost_x=1.5, prefill_cost_x=1.2, decode_cost_x=0.8)
    true = reality.true_engine(PROFILE, spec).profile
    assert true.base_s == pytest.approx(PROFILE.base_s * 1.5)
    assert true.context_s_per_token == pytest.approx(PROFILE.context_s_per_token * 1.5)
    assert true.prefill_s_per_token == pytest.approx(PROFILE.prefill_s_per_token * 1.8)
    assert true.decode_s_per_seq == pytest.approx(PROFILE.decode_s_per_seq * 1.2)
    assert true.kv_capacity_tokens == PROFILE.kv_capacity_tokens
    assert reality.true_engine(PROFILE, scenario.RealitySpec()).profile is PROFILE
    assert "step x1.50" in reality.describe(spec)


def test_overheads_delay_what_the_client_sees_not_the_gpu() -> None:
    """A lone request: TTFT grows by the request overhead and one token's streaming delay,
    TPOT by the streaming delay; per-token deadlines are judged on what the client sees."""
    plain, slow = (
        EngineBackend(PROFILE),
        EngineBackend(
            PROFILE,
            overheads=Overheads(
                request_overhead_s=0.01,
                request_overhead_s_per_prompt_token=1e-6,
                output_s_per_token=0.004,
            ),
        ),
    )
    probe = EngineBackend(PROFILE)
    probe.submit(0, 0.0, 1000, 20, ttft_slo_s=1.0, tpot_slo_s=1.0)
    ((alone,),) = (probe.drain(),)
    # A per-token deadline between the declared engine's TPOT and that plus the delay.
    tpot_slo_s = alone.tpot_s + 0.002
    ttft_slo_s = alone.first_token_s + 0.05
    for backend in (plain, slow):
        backend.submit(0, 0.0, 1000, 20, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s)
    (a,), (b,) = plain.drain(), slow.drain()
    assert b.first_token_s - a.first_token_s == pytest.approx(0.01 + 0.001 + 0.004)
    assert b.tpot_s - a.tpot_s == pytest.approx(0.004)
    assert a.tpot_s < tpot_slo_s < b.tpot_s
    assert a.deadline_met and not b.deadline_met


def test_the_oracle_measures_the_true_engine_and_policies_get_the_declared_one(
    tmp_path: Path,
) -> None:
    exact = _setup(tmp_path, "{}")
    slower = _setup(tmp_path, "{step_cost_x: 1.5, output_s_per_token: 0.005}")
    assert slower.profiles_by_model == exact.profiles_by_model  # what policies are given
    assert runner.capacities(slower)["default/fast"] < runner.capacities(exact)["default/fast"]
    workload = runner.build_workload(slower, 0)
    policy = runner.make_policy("tierscale", slower, workload)
    assert policy.name == "tierscale"
    (true,) = slower.true_engines_by_model.values()
    assert true.profile.base_s == pytest.approx(PROFILE.base_s * 1.5)
    assert exact.true_engines_by_model == {}


def test_the_true_batch_limit_runs_in_the_replicas(tmp_path: Path) -> None:
    setup = _setup(tmp_path, "{max_num_seqs: 8}")
    (tier,) = setup.tiers
    assert tier.pool.max_num_seqs == 256  # what the Deployment says and policies read
    backend = runner.backend_factory(setup)(tier.key)
    for i in range(20):
        backend.submit(i, 0.0, 100, 200, float("inf"), float("inf"))
    backend.run_until(0.5)
    assert backend.num_running == 8


def test_the_probe_counts_overheads_against_the_slo() -> None:
    rng = np.random.default_rng(0)
    prompts = rng.integers(100, 800, 400)
    outputs = rng.integers(20, 200, 400)
    slo = Slo(ttft_s=0.5, tpot_s=0.03, attainment_frac=0.9)
    settings = capacity_probe.ProbeSettings(requests=400, iterations=4)
    base = capacity_probe.max_rate_rps(PROFILE, slo, prompts, outputs, settings=settings)
    late = capacity_probe.max_rate_rps(
        PROFILE,
        slo,
        prompts,
        outputs,
        settings=settings,
        overheads=Overheads(output_s_per_token=0.02),
    )
    assert late < base


def test_reality_fields_are_validated(tmp_path: Path) -> None:
    with pytest.raises(scenario.ScenarioError, match=r"models\.m\.reality\.step_cost_x"):
        _setup(tmp_path, "{step_cost_x: 0}")
    with pytest.raises(scenario.ScenarioError, match=r"models\.m\.reality\.bogus: Extra"):
        _setup(tmp_path, "{bogus: 1}")
    assert scenario.RealitySpec(step_cost_x=1.0).is_exact
