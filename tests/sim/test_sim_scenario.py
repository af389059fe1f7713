"""Scenario files: every shipped one validates; mistakes name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from tierscale_sim.scenario import ScenarioError, load_scenario, resolve_path, tiers_of

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

MINIMAL = """
name: tiny
models: {m: {profile: llama-3.1-8b-h100}}
tiers:
  - {name: fast, ttft_s: 0.5, tpot_s: 0.05}
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


def test_minimal_scenario_gets_documented_defaults(tmp_path: Path) -> None:
    spec = load_scenario(_write(tmp_path, MINIMAL))
    (tier,) = tiers_of(spec)
    assert tier.key == "default/fast"
    assert tier.scaling.cold_start_s == 120.0
    assert spec.control_interval_s == 15.0


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("ttft_s: 0.5", "ttft_s: -1"), r"tiers\.0\.ttft_s: Input should be greater than 0"),
        (("ttft_s: 0.5", "ttft_s: fast"), r"tiers\.0\.ttft_s: .*valid number"),
        (("duration_s: 60", "duration_s: 60\n  bogus: 1"), r"workload\.bogus: Extra inputs"),
        (("kind: constant", "kind: sawtooth"), r"workload\.rate\.kind: Input should be"),
        (("rate_rps: 5", "min_rate_rps: 5"), r"workload\.rate: .*needs rate_rps"),
        (("name: tiny", "name: tiny\nwarmup_s: -1"), r"warmup_s: Input should be greater"),
        (("name: tiny", "name: tiny\nwarmup_s: 60"), r"warmup_s \(60\) must be shorter than"),
    ],
)
def test_bad_fields_are_named_with_what_was_expected(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    path = _write(tmp_path, MINIMAL.replace(*edit))
    with pytest.raises(ScenarioError, match=expected) as err:
        load_scenario(path)
    assert str(path) in str(err.value)


def test_unknown_policy_and_unknown_mix_tier_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown policies"):
        load_scenario(_write(tmp_path, MINIMAL + "policies: [tierscale, magic]\n"))
    text = MINIMAL.replace("duration_s: 60", "duration_s: 60\n  tier_mix: {slow: 1.0}")
    with pytest.raises(ScenarioError, match="unknown tiers"):
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
        "  - {name: fast, ttft_s: 0.5, tpot_s: 0.05}",
        "  - {name: fast, ttft_s: 0.5, tpot_s: 0.05, max_num_batched_tokens: 2048}\n"
        "  - {name: slow, ttft_s: 2.0, tpot_s: 0.2}",
    )
    fast, slow = tiers_of(load_scenario(_write(tmp_path, text)))
    assert (fast.pool.max_num_batched_tokens, fast.pool.max_num_seqs) == (2048, 64)
    assert (slow.pool.max_num_batched_tokens, slow.pool.max_num_seqs) == (None, 64)
