"""The chart's generated files are what the code generates, and they say what the code does.

`tierscale chart --check` is the drift test: a Settings field, an RBAC rule, a recording
rule or a dashboard panel changed without regenerating the chart fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tierscale.adapters.kubernetes import rbac as adapter_rbac
from tierscale.chart import generate, rbac_rules, settings_values, values_doc
from tierscale.cli import main
from tierscale.settings import Settings

CHART = Path(__file__).resolve().parents[2] / "charts" / "tierscale"


def test_committed_chart_files_are_generated() -> None:
    assert main(["chart", "--dir", str(CHART), "--check"]) == 0


def test_check_fails_on_a_hand_edit(tmp_path: Path) -> None:
    copy = tmp_path / "tierscale"
    copy.mkdir()
    (copy / "values.yaml").write_text((CHART / "values.yaml").read_text())
    assert main(["chart", "--dir", str(copy)]) == 0
    assert main(["chart", "--dir", str(copy), "--check"]) == 0
    rbac = copy / "files" / "rbac.yaml"
    rbac.write_text(
        rbac.read_text().replace('"list"', '"delete"', 1).replace("- list", "- delete", 1)
    )
    (copy / "dashboards" / "extra.json").write_text("{}")
    assert main(["chart", "--dir", str(copy), "--check"]) == 1


def test_every_setting_is_a_value_with_its_default_and_env_name() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["settings"]
    env = yaml.safe_load((CHART / "files" / "settings-env.yaml").read_text())
    assert set(values) == {settings_values.camel(n) for n in Settings.model_fields}
    for name, info in Settings.model_fields.items():
        key = settings_values.camel(name)
        assert env[key] == f"TIERSCALE_{name.upper()}"
        default = list(info.default) if isinstance(info.default, tuple) else info.default
        if name not in settings_values.CHART_SET:
            assert values[key] == default, key


def test_values_schema_closes_settings_with_pydantic_bounds() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    settings = schema["properties"]["settings"]
    assert settings["additionalProperties"] is False
    interval = settings["properties"]["controlIntervalS"]
    assert interval["exclusiveMinimum"] == 0.0 and interval["maximum"] == 3600.0
    assert settings["properties"]["logFormat"]["enum"] == ["json", "text"]
    assert schema["properties"]["image"]["additionalProperties"] is False


def test_every_adapter_grant_is_in_the_chart_rules() -> None:
    granted = {
        (g, res, verb)
        for binding in rbac_rules.document().values()
        for rule in binding
        for g in rule["apiGroups"]
        for res in rule["resources"]
        for verb in rule["verbs"]
    }
    for rule in adapter_rbac.RULES:
        for verb in rule.verbs:
            assert (rule.api_group, rule.resource, verb) in granted
    for binding in rbac_rules.document().values():
        for rule in binding:
            assert rule["why"], rule


def test_rules_files_exist_for_each_window_and_index_them() -> None:
    index = yaml.safe_load((CHART / "files" / "recording-rules" / "windows.yaml").read_text())
    assert set(index) == {f"{w:g}" for w in generate.RULE_WINDOWS_S}
    for name in index.values():
        doc = yaml.safe_load((CHART / "files" / "recording-rules" / name).read_text())
        assert [g["name"] for g in doc["groups"]] == ["tierscale-envoy", "tierscale-vllm"]


def test_readme_documents_every_documented_value() -> None:
    readme = (CHART / "README.md").read_text()
    for doc in values_doc.documented((CHART / "values.yaml").read_text()):
        assert f"`{doc.key}`" in readme
    assert "`settings.controlIntervalS`" in readme
