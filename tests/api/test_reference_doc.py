"""docs/crd-reference.md's field tables are generated from the CRD schema and never drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from tierscale.api.models import SLOTierSpec
from tierscale.api.reference import field_table, render_sections

DOC = Path(__file__).resolve().parents[2] / "docs" / "crd-reference.md"


def test_reference_tables_match_the_models() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render_sections(text) == text, (
        "docs/crd-reference.md drifted: run "
        "`python -m tierscale.api.reference docs/crd-reference.md`"
    )


def test_every_spec_field_is_documented_with_its_default() -> None:
    table = field_table("spec")
    for needle in ("`spec.pool.minReplicas` | integer |  | `0` | >= 0", "`spec.slo.percentile`"):
        assert needle in table
    documented = {line.split("`")[1] for line in table.splitlines()[2:]}
    assert documented == set(_model_paths(SLOTierSpec, "spec"))


def _model_paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Every field path of the pydantic model tree, by alias."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        paths.append(path)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            paths += _model_paths(info.annotation, path)
    return paths


def test_missing_markers_are_reported() -> None:
    with pytest.raises(ValueError, match="BEGIN GENERATED spec"):
        render_sections("no markers here")
