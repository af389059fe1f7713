"""The committed CRD is exactly what the models generate, and it is a structural schema."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.crd_schema_eval import CEL_RULES, apply_defaults, validate
from tierscale.api.crd import (
    CRD_FILE_NAME,
    KEY_ORDER,
    SchemaTranslationError,
    build_crd,
    openapi_schema,
    render_crd_yaml,
    structural_schema,
)
from tierscale.cli.crds import register, run

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / CRD_FILE_NAME
FORBIDDEN_KEYWORDS = {"$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not", "title"}
TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def _nodes(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path or "<root>", node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")


def test_committed_crd_matches_the_models() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_crd_yaml(), (
        "crds/ drifted from tierscale.api.models: run `tierscale crds --out crds`"
    )


def test_rendering_is_deterministic() -> None:
    assert render_crd_yaml() == render_crd_yaml()
    assert yaml.safe_load(render_crd_yaml()) == build_crd()


def test_every_schema_node_is_typed_and_uses_only_structural_keywords() -> None:
    for path, node in _nodes(openapi_schema()):
        assert node.get("type") in TYPES, f"{path}: missing or unknown type"
        assert not FORBIDDEN_KEYWORDS & node.keys(), f"{path}: forbidden keyword"
        assert set(node) <= set(KEY_ORDER), f"{path}: unexpected keys {set(node) - set(KEY_ORDER)}"
        assert list(node) == [k for k in KEY_ORDER if k in node], f"{path}: unstable key order"
        if node["type"] == "object" and path.startswith(".spec"):
            assert "properties" in node, f"{path}: spec objects are closed"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, f"{path}: {bound} must be boolean (OpenAPI v3.0)"


def test_metadata_schema_only_restricts_type() -> None:
    assert openapi_schema()["properties"]["metadata"] == {"type": "object"}


def test_every_default_is_valid_against_its_own_schema() -> None:
    checked = 0
    for path, node in _nodes(openapi_schema()):
        if "default" in node:
            checked += 1
            value = apply_defaults(node, node["default"])
            assert validate(node, value, path) == [], f"{path}: default {node['default']!r}"
    assert checked >= 12


def test_every_cel_rule_has_a_python_twin_and_a_message() -> None:
    rules = [
        rule
        for _, node in _nodes(openapi_schema())
        for rule in node.get("x-kubernetes-validations", ())
    ]
    assert {r["rule"] for r in rules} == set(CEL_RULES)
    assert all(r.get("message") for r in rules)


def test_pool_carries_the_min_max_rule() -> None:
    pool = openapi_schema()["properties"]["spec"]["properties"]["pool"]
    assert pool["x-kubernetes-validations"] == [
        {
            "message": "minReplicas must be <= maxReplicas",
            "rule": "self.minReplicas <= self.maxReplicas",
        }
    ]


def test_list_map_keys_are_required() -> None:
    for path, node in _nodes(openapi_schema()):
        for key in node.get("x-kubernetes-list-map-keys", ()):
            item = node["items"]
            assert key in item.get("required", ()) or "default" in item["properties"][key], path


def test_crd_names_subresource_and_columns() -> None:
    crd = build_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "slotiers.tierscale.dev"
    assert (spec["group"], spec["scope"]) == ("tierscale.dev", "Namespaced")
    assert spec["names"]["kind"] == "SLOTier" and spec["names"]["plural"] == "slotiers"
    assert "slot" in spec["names"]["shortNames"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["storage"] and version["served"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == [
        "Model",
        "TTFT",
        "TTFT-Obs",
        "TPOT",
        "TPOT-Obs",
        "Desired",
        "Ready",
        "Attainment",
        "Reason",
        "Age",
    ]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_printer_column_paths_exist_in_the_schema() -> None:
    schema = openapi_schema()
    for column in build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]:
        node: Mapping[str, Any] = schema
        parts = column["jsonPath"].lstrip(".").split(".")
        if parts[0] == "metadata":
            continue
        for part in parts:
            node = node["properties"][part]
        assert node["type"] == column["type"] or column["type"] == "date", column


def test_translation_refuses_what_kubernetes_would_reject() -> None:
    with pytest.raises(SchemaTranslationError, match="only `X | None` unions"):
        structural_schema({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    with pytest.raises(SchemaTranslationError, match="no type"):
        structural_schema({"description": "untyped"})
    with pytest.raises(SchemaTranslationError, match="unsupported keyword 'oneOf'"):
        structural_schema({"type": "string", "oneOf": []})


def test_translation_inlines_refs_and_turns_optional_into_nullable() -> None:
    schema = {
        "$defs": {"Inner": {"type": "object", "title": "Inner", "properties": {}}},
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}], "default": None},
            "b": {"type": "number", "exclusiveMinimum": 0},
        },
    }
    out = structural_schema(schema)
    assert out["properties"]["a"] == {"type": "object", "nullable": True, "properties": {}}
    assert out["properties"]["b"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}


def test_cli_check_detects_drift_and_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argparse.Namespace(out=tmp_path, check=True)) == 1
    assert "missing" in capsys.readouterr().err
    assert run(argparse.Namespace(out=tmp_path, check=False)) == 0
    assert run(argparse.Namespace(out=tmp_path, check=True)) == 0
    (tmp_path / CRD_FILE_NAME).write_text(render_crd_yaml().replace("slot\n", "slt\n"))
    assert run(argparse.Namespace(out=tmp_path, check=True)) == 1
    err = capsys.readouterr().err
    assert "DRIFT" in err and "2 changed lines" in err and "+    - slot" in err


def test_cli_prints_the_crd_without_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argparse.Namespace(out=None, check=False)) == 0
    out = capsys.readouterr().out
    assert out.startswith(render_crd_yaml())
    kinds = [d["spec"]["names"]["kind"] for d in yaml.safe_load_all(out)]
    assert kinds == ["SLOTier", "ClusterKopfPeering", "KopfPeering"]


def test_cli_rejects_an_out_path_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert run(argparse.Namespace(out=target, check=False)) == 2


def test_register_adds_the_crds_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="tierscale")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["crds", "--out", "somewhere", "--check"])
    assert (args.func, args.out, args.check) == (run, Path("somewhere"), True)
