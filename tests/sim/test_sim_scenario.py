"""Scenario files: every shipped one validates; tiers are SLOTiers; mistakes name the field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from tierscale_sim import runner
from tierscale_sim.scenario import (
    ScenarioError,
    fleet_tiers_of,
    load_scenario,
    resolve_path,
    tiers_of,
)

from tierscale.api.codec import to_tier

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

MINIMAL = """
name: tiny
models: {m: {profile: llama-3.1-8b-h100}}
tiers:
  - name: fast
    spec:
      model: m
      slo: {ttft: 500ms, tpot: 50ms}
      pool: {deployment: vllm-fast, maxReplicas: 4}
workload:
  rate: {kind: constant, rate_rps: 5}
  duration_s: 60
  tokens: {prompt_mean: 100, output_mean: 20}
"""


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_validate(path: Path) -> None:
    spec = load_scenario(path)
    assert tiers_of(spec)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_a_scenario_tier_means_what_the_same_slotier_means_in_a_cluster(tmp_path: Path) -> None:
    """Same codec, same defaults (minReplicas 0, coldStart 120s, ...), same domain Tier."""
    spec = load_scenario(_write(tmp_path, MINIMAL))
    (tier,) = tiers_of(spec)
    raw = yaml.safe_load(MINIMAL)["tiers"][0]
    resource = {
        "apiVersion": "tierscale.dev/v1alpha1",
        "kind": "SLOTier",
        "metadata": {"name": raw["name"]},
        "spec": raw["spec"],
    }
    assert tier == to_tier(resource)
    assert tier.key == "default/fast"
    assert (tier.pool.min_replicas, tier.scaling.cold_start_s) == (0, 120.0)
    assert spec.control_interval_s == 15.0


POOL_LINE = "      pool: {deployment: vllm-fast, maxReplicas: 4}\n"


def _tier_fast(*extra: str) -> str:
    """MINIMAL with lines added to tier `fast` after its pool (6 spaces: in spec; 4: beside)."""
    return MINIMAL.replace(POOL_LINE, POOL_LINE + "".join(f"{line}\n" for line in extra))


def test_real_cold_start_defaults_to_the_declared_one_and_may_differ(tmp_path: Path) -> None:
    spec = load_scenario(_write(tmp_path, _tier_fast("      scaling: {coldStart: 45s}")))
    (planned,) = tiers_of(spec)
    assert fleet_tiers_of(spec) == [planned]
    assert planned.scaling.cold_start_s == 45.0
    text = _tier_fast("      scaling: {coldStart: 45s}", "    sim: {cold_start_s: 90}")
    spec = load_scenario(_write(tmp_path, text))
    (planned,) = tiers_of(spec)
    (simulated,) = fleet_tiers_of(spec)
    assert planned.scaling.cold_start_s == 45.0
    assert simulated == replace(planned, scaling=replace(planned.scaling, cold_start_s=90.0))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # The SLOTier spec: the codec's paths and the API server's phrasing.
        (("ttft: 500ms", "ttft: fast"), r"tiers\.0\.spec\.slo\.ttft: Invalid value: \"fast\""),
        (("ttft: 500ms", "ttft: 0ms"), r"tiers\.0\.spec\.slo\.ttft: Invalid value: \"0ms\""),
        (("maxReplicas: 4", "maxReplica: 4"), r'unknown field "spec\.pool\.maxReplica"'),
        (("maxReplicas: 4", "minReplicas: 1"), r"tiers\.0\.spec\.pool\.maxReplicas: Required"),
        (
            ("maxReplicas: 4", "minReplicas: 5, maxReplicas: 4"),
            r"tiers\.0\.spec\.pool: Invalid value: minReplicas must be <= maxReplicas",
        ),
        (("      model: m\n", ""), r"tiers\.0\.spec\.model: Required value"),
        # Beside the spec.
        (("name: fast", "name: Fast"), r"tiers\.0\.name: String should match pattern"),
        (
            ("maxReplicas: 4}", "maxReplicas: 4}\n    sim: {initial_replicas: 9}"),
            r"tiers\.0\.sim\.initial_replicas: must be <= spec\.pool\.maxReplicas \(4\), got 9",
        ),
        (
            ("maxReplicas: 4}", "maxReplicas: 4}\n    engine: {max_num_seqs: 0}"),
            r"tiers\.0\.engine\.max_num_seqs: Input should be greater than or equal to 1",
        ),
        (("model: m", "model: other"), r"tiers\.0\.spec\.model: 'other' is not a key of models"),
        # The rest of the scenario.
        (("duration_s: 60", "duration_s: 60\n  bogus: 1"), r"workload\.bogus: Extra inputs"),
        (("kind: constant", "kind: sawtooth"), r"workload\.rate\.kind: Input should be"),
        (("rate_rps: 5", "min_rate_rps: 5"), r"workload\.rate: .*needs rate_rps"),
        (("name: tiny", "name: tiny\nwarmup_s: -1"), r"warmup_s: Input should be greater"),
        (("name: tiny", "name: tiny\nwarmup_s: 60"), r"warmup_s: must be shorter than"),
        (
            ("  tokens: {prompt_mean: 100, output_mean: 20}\n", ""),
            r"workload\.tokens: required: tiers \['fast'\] have no sim\.tokens",
        ),
    ],
)
def test_bad_fields_are_named_with_what_was_expected(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    text = MINIMAL.replace(*edit)
    assert text != MINIMAL
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError, match=expected) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"scenario {path}: invalid")


def test_every_spec_error_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("ttft: 500ms", "ttft: soon").replace("tpot: 50ms", "tpot: -1ms")
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, text + "seeds: 0\n"))
    message = str(err.value)
    assert "invalid (3 error(s))" in message
    for field in ("tiers.0.spec.slo.ttft:", "tiers.0.spec.slo.tpot:", "seeds:"):
        assert f"\n  {field}" in message


def test_the_old_compact_form_says_where_each_key_went(tmp_path: Path) -> None:
    old = MINIMAL.replace(
        "  - name: fast\n    spec:\n      model: m\n      slo: {ttft: 500ms, tpot: 50ms}\n"
        "      pool: {deployment: vllm-fast, maxReplicas: 4}\n",
        "  - {name: fast, ttft_s: 0.5, tpot_s: 0.05, min_replicas: 1}\n",
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, old))
    assert "\n  tiers.0: tiers embed the SLOTier spec now" in str(err.value)
    assert "ttft_s -> spec.slo.ttft (a duration, e.g. 500ms)" in str(err.value)
    assert "min_replicas -> spec.pool.minReplicas (the CRD's default is 0" in str(err.value)
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, "cold_start_s: 60\n" + MINIMAL))
    assert "\n  cold_start_s: moved into each tier: spec.scaling.coldStart" in str(err.value)


SLOW = (
    "  - name: slow\n    spec:\n      model: m\n      slo: {ttft: 2s, tpot: 200ms}\n"
    "      pool: {deployment: DEPLOYMENT, maxReplicas: 4}\n"
)


def test_tier_names_and_deployments_are_unique(tmp_path: Path) -> None:
    shared = MINIMAL.replace("workload:", SLOW.replace("DEPLOYMENT", "vllm-fast") + "workload:")
    expected = (
        r"tiers\.1\.spec\.pool\.deployment: Deployment default/vllm-fast is already the pool"
        r" of tier 'fast'; one SLOTier owns one Deployment"
    )
    with pytest.raises(ScenarioError, match=expected):
        load_scenario(_write(tmp_path, shared))
    twin = MINIMAL.replace(
        "workload:",
        SLOW.replace("DEPLOYMENT", "vllm-slow").replace("slow\n", "fast\n") + "workload:",
    )
    with pytest.raises(ScenarioError, match=r"tiers: names must be unique"):
        load_scenario(_write(tmp_path, twin))


def test_unknown_policy_and_unknown_mix_tier_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"policies: unknown policies \['magic'\]"):
        load_scenario(_write(tmp_path, MINIMAL + "policies: [tierscale, magic]\n"))
    text = MINIMAL.replace("duration_s: 60", "duration_s: 60\n  tier_mix: {slow: 1.0}")
    with pytest.raises(ScenarioError, match=r"workload\.tier_mix: names unknown tiers \['slow'\]"):
        load_scenario(_write(tmp_path, text))


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(_write(tmp_path, "a: [1, 2"))
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_trace_paths_expand_variables_and_resolve_relative_to_the_file(tmp_path: Path) -> None:
    scn = tmp_path / "s.yaml"
    assert resolve_path("${D}/t.csv", scn, {"D": "/data"}) == Path("/data/t.csv")
    assert resolve_path("t.csv", scn, {}) == tmp_path / "t.csv"
    with pytest.raises(ScenarioError, match="unset variable"):
        resolve_path("${NOPE}/t.csv", scn, {})


def test_engine_arguments_come_from_the_tier_else_from_its_model(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "models: {m: {profile: llama-3.1-8b-h100}}",
        "models: {m: {profile: llama-3.1-8b-h100, max_num_seqs: 64}}",
    ).replace(
        POOL_LINE,
        POOL_LINE + "    engine: {max_num_batched_tokens: 2048}\n"
        "  - name: slow\n"
        "    spec:\n"
        "      model: m\n"
        "      slo: {ttft: 2s, tpot: 200ms}\n"
        "      pool: {deployment: vllm-slow, maxReplicas: 4}\n",
    )
    fast, slow = tiers_of(load_scenario(_write(tmp_path, text)))
    assert (fast.pool.max_num_batched_tokens, fast.pool.max_num_seqs) == (2048, 64)
    assert (slow.pool.max_num_batched_tokens, slow.pool.max_num_seqs) == (None, 64)


def test_simulated_replicas_take_the_real_cold_start_while_policies_see_the_declared(
    tmp_path: Path,
) -> None:
    """A 20x load step makes KEDA scale up; new replicas are Ready after sim.cold_start_s."""
    lag_by_real_s: dict[float, float] = {}
    for real_s in (0.0, 90.0):
        text = _tier_fast(
            "      scaling: {coldStart: 0s}", f"    sim: {{cold_start_s: {real_s:g}}}"
        ).replace("maxReplicas: 4}", "minReplicas: 1, maxReplicas: 4}")
        text = text.replace(
            "rate: {kind: constant, rate_rps: 5}", "rate: {kind: step, levels: [[0, 2], [60, 40]]}"
        ).replace("duration_s: 60", "duration_s: 200")
        text = text.replace(
            "prompt_mean: 100, output_mean: 20", "prompt_mean: 1000, output_mean: 200"
        )
        path = _write(tmp_path, text)
        setup = runner.prepare(load_scenario(path), path)
        assert setup.tiers[0].scaling.cold_start_s == 0.0
        run = runner.run_policy(setup, "keda", seed=0)
        key = setup.tiers[0].key
        asked = [r.t_s for r in run.timeline if r.current_by_pool[key] > 1]
        ready = [r.t_s for r in run.timeline if r.ready_by_pool[key] > 1]
        assert asked
        assert ready
        lag_by_real_s[real_s] = ready[0] - asked[0]
    assert lag_by_real_s[0.0] == 0.0
    assert lag_by_real_s[90.0] >= 90.0


def test_the_documented_tier_example_is_valid(tmp_path: Path) -> None:
    doc = (SCENARIOS.parent / "docs" / "scenarios.md").read_text()
    example = doc.split("## `tiers[]`", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    head = MINIMAL.split("tiers:\n")[0].replace("{m: {profile", "{llama-3.1-8b: {profile")
    text = head + example + "workload:" + MINIMAL.split("workload:", 1)[1]
    (tier,) = tiers_of(load_scenario(_write(tmp_path, text)))
    (simulated,) = fleet_tiers_of(load_scenario(_write(tmp_path, text)))
    assert (tier.scaling.cold_start_s, simulated.scaling.cold_start_s) == (60.0, 90.0)
    assert tier.pool.max_num_batched_tokens == 2048
