"""Recording rules come from the query table: every input is recorded under the name the
adapter reads back, and the testbed's rules file is exactly the generated one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tierscale_testbed import prometheus as testbed_prometheus

from tierscale.adapters.prometheus import queries, rules
from tierscale.cli import main

TESTBED_RULES = testbed_prometheus.RULES_FILE
TESTBED_WINDOW_S = 10.0
TESTBED_INTERVAL_S = float(testbed_prometheus.SCRAPE_INTERVAL_S)


def test_the_testbed_rules_are_the_generated_ones() -> None:
    expected = rules.render(TESTBED_WINDOW_S, TESTBED_INTERVAL_S)
    assert TESTBED_RULES.read_text(encoding="utf-8") == expected, (
        f"regenerate: {rules.command_line(TESTBED_WINDOW_S, TESTBED_INTERVAL_S)} "
        f"--out {TESTBED_RULES}"
    )


def test_every_recorded_input_is_a_rule_with_the_adapters_expression() -> None:
    document = rules.rule_groups(60.0)
    recorded = {r["record"]: r["expr"] for g in document["groups"] for r in g["rules"]}
    assert len(recorded) == len(queries.RECORDED)
    for query in queries.RECORDED:
        assert recorded[query.record_name(60.0)] == query.render("", 60.0)
    assert all("interval" not in g for g in document["groups"])


def test_interval_is_set_per_group_when_given() -> None:
    document = yaml.safe_load(rules.render(10.0, 1.0))
    assert [g["interval"] for g in document["groups"]] == ["1s", "1s"]


def test_cli_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rules.yml"
    assert main(["rules", "--window", "1m", "--out", str(out)]) == 0
    assert out.read_text() == rules.render(60.0)
    assert main(["rules", "--window", "60s", "--check", str(out)]) == 0
    assert main(["rules", "--window", "30s", "--check", str(out)]) == 1
    err = capsys.readouterr().err
    assert "DRIFT" in err and "tierscale rules --window 30s --out" in err
    assert main(["rules", "--check", str(tmp_path / "missing.yml")]) == 1


def test_cli_prints_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--window", "10s", "--interval", "1s"]) == 0
    assert capsys.readouterr().out == rules.render(10.0, 1.0)


def test_cli_rejects_a_bad_window(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["rules", "--window", "ten seconds"])
    assert exit_info.value.code == 2
    assert "expected e.g. 60s" in capsys.readouterr().err


def test_the_docs_name_every_recorded_series() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "prometheus.md").read_text(encoding="utf-8")
    for query in (*queries.RECORDED, *queries.POD_INPUTS):
        assert f"`{query.name}`" in docs or query in queries.ENVOY_EXTRAS, query.name
        if query not in queries.POD_INPUTS:
            assert query.record_name(60.0) in docs, query.record_name(60.0)
