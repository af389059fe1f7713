"""`tierscale plan` on the bundled example, as JSON and as a table, and its bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tierscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
TIERS = ROOT / "examples" / "plan" / "tiers.yaml"
OBSERVATIONS = ROOT / "examples" / "plan" / "observations.json"
PEAK = ROOT / "examples" / "plan" / "observations-peak.json"


def test_plan_prints_json_for_every_tier(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--tiers", str(TIERS), "--observations", str(OBSERVATIONS), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert set(plan["decisions"]) == {"llm/ide", "llm/chat", "llm/batch"}
    assert plan["total_gpus"] <= 12
    for decision in plan["decisions"].values():
        assert decision["message"]
        assert sum(decision["weights_by_pool"].values()) == pytest.approx(1.0)
    # batch does not lend, so nobody is routed to it but batch itself
    for key, decision in plan["decisions"].items():
        if key != "llm/batch":
            assert "llm/batch" not in decision["weights_by_pool"]


def _json_plan(observations: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["plan", "--tiers", str(TIERS), "--observations", str(observations), "--json"]) == 0
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)
    return plan


def test_reported_spill_is_what_the_routing_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In the calm hour no cap binds: batch's own replica serves it, nothing is planned
    # or routed elsewhere.
    batch = _json_plan(OBSERVATIONS, capsys)["decisions"]["llm/batch"]
    assert batch["weights_by_pool"] == {"llm/batch": 1.0}
    assert batch["spill_out_rps"] == 0.0 and batch["planned_spill_out_rps"] == 0.0
    assert "spare capacity" not in batch["message"]
    # At the peak with ide quieter (5 req/s) the budget plans no spillover for chat, while
    # today's routing puts what its three Ready replicas cannot carry on ide's Ready spare
    # room: the spill shown is the routed one, for every tier.
    request = json.loads(PEAK.read_text())
    request["data"]["observations"]["by_tier"]["llm/ide"]["rate_rps"] = 5.0
    quiet_ide = tmp_path / "observations-peak-quiet-ide.json"
    quiet_ide.write_text(json.dumps(request))
    peak = _json_plan(quiet_ide, capsys)["decisions"]
    observed_rps = {"llm/ide": 5.0, "llm/chat": 60.0, "llm/batch": 12.0}
    for key, decision in peak.items():
        routed = (1.0 - decision["weights_by_pool"].get(key, 0.0)) * observed_rps[key]
        assert decision["spill_out_rps"] == pytest.approx(routed, abs=1e-9)
    chat = peak["llm/chat"]
    assert chat["planned_spill_out_rps"] < 0.005
    assert chat["weights_by_pool"]["llm/ide"] * 60.0 > 1.0


def test_at_the_peak_each_tier_names_what_bound_it(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _json_plan(PEAK, capsys)
    assert plan["total_gpus"] == 10 and plan["budget_limited"]
    ide = plan["decisions"]["llm/ide"]
    assert ide["desired_replicas"] == 6 and ide["needed_replicas"] == 13
    assert ide["reason"] == "ScaleUpLimited"
    assert ide["bound_by"] == ["BudgetLimited", "ScaleUpLimited"]
    assert ide["message"].startswith("2 -> 6 replicas: forecast 37.76 req/s")
    # An idle replica holds ide's p99.5 TTFT at its 7,400-token p99 prompts only up to
    # 4.7 % busy (0.90 req/s): its capacity leans to its mean lengths' (2.97 req/s).
    assert (
        "needs 13 replicas at 2.97 req/s each, sized partly for the mean lengths"
        in (ide["message"])
    )
    assert "(lean: a replica holds the p99.5 tail only up to 4.7% busy (< 10%)" in (ide["message"])
    assert "the 12-GPU budget (12 GPUs planned) allows 11" in ide["message"]
    # The replicas' story ends at the step limit; then the engine arguments that would
    # serve more per replica (TPOT of 3000-token prompts is bound by 8192-token chunks).
    assert (
        "; +4 per decision (maxScaleUpReplicas) allows 6 now; engine arguments: "
        in (ide["message"])
    )
    assert ide["message"].endswith(f"engine arguments: {ide['engine_advice']}")
    assert ide["engine_advice"].startswith("with --max-num-batched-tokens 2048 one replica")
    assert ide["engine_advice"].endswith(
        "against 0.90 with --max-num-batched-tokens 8192 (TPOT binds)"
    )
    for key in ("llm/chat", "llm/batch"):
        assert "the 12-GPU budget (12 GPUs planned)" in plan["decisions"][key]["message"]
        assert plan["decisions"][key]["bound_by"][0] == "BudgetLimited"


def test_plan_prints_a_table_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--tiers", str(TIERS), "--observations", str(OBSERVATIONS)]) == 0
    out = capsys.readouterr().out
    assert "llm/ide" in out and "total GPUs" in out


def test_malformed_observations_exit_2_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "obs.json"
    bad.write_text('{"kind": "PlanRequest",\n  "data": {oops}}')
    assert main(["plan", "--tiers", str(TIERS), "--observations", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "not valid JSON" in err


def test_observation_of_the_wrong_type_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "obs.json"
    request = json.loads(OBSERVATIONS.read_text())
    request["data"]["observations"]["by_tier"]["llm/ide"]["rate_rps"] = -3
    bad.write_text(json.dumps(request))
    assert main(["plan", "--tiers", str(TIERS), "--observations", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "observations.by_tier.llm/ide" in err and "rate_rps must be >= 0" in err


def test_invalid_tier_file_exits_2_and_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "tiers.yaml"
    bad.write_text(
        TIERS.read_text().replace(
            "minReplicas: 1, maxReplicas: 16", "minReplicas: 9, maxReplicas: 2", 1
        )
    )
    assert main(["plan", "--tiers", str(bad), "--observations", str(OBSERVATIONS)]) == 2
    assert "minReplicas" in capsys.readouterr().err
