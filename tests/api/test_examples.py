"""Bundled examples: valid ones parse, invalid ones fail with exactly their documented error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.api.crd_schema_eval import admit
from tierscale.api.codec import SpecError, load_tiers_yaml
from tierscale.api.crd import openapi_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slotiers"
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))
INVALID = sorted(p for p in (EXAMPLES / "invalid").glob("*.yaml") if p.name != "expected.yaml")
EXPECTED: dict[str, dict[str, str]] = yaml.safe_load(
    (EXAMPLES / "invalid" / "expected.yaml").read_text(encoding="utf-8")
)
REQUIRED_CASES = {
    "min-above-max.yaml",
    "negative-min-replicas.yaml",
    "bad-duration.yaml",
    "percentile-out-of-range.yaml",
    "attainment-above-one.yaml",
    "missing-model.yaml",
    "missing-deployment.yaml",
    "wrong-type-max-replicas.yaml",
}


def _documents(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def test_every_invalid_example_has_an_expectation_and_vice_versa() -> None:
    assert {p.name for p in INVALID} == set(EXPECTED)
    assert set(EXPECTED) >= REQUIRED_CASES
    for name, expectation in EXPECTED.items():
        assert set(expectation) == {"parser", "apiserver"}, name


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_examples_parse(path: Path) -> None:
    tiers = load_tiers_yaml(path)
    assert len(tiers) == len(_documents(path))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_examples_pass_the_crd_schema(path: Path) -> None:
    for document in _documents(path):
        assert admit(openapi_schema(), document) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_examples_fail_with_their_expected_parser_error(path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_tiers_yaml(path)
    assert len(caught.value.errors) == 1, "each invalid example should break exactly one rule"
    assert EXPECTED[path.name]["parser"] in str(caught.value)
    assert str(path) in str(caught.value) and "document 1, line " in str(caught.value)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_examples_fail_the_crd_schema_with_the_apiserver_wording(path: Path) -> None:
    (document,) = _documents(path)
    errors = admit(openapi_schema(), document)
    assert errors, "the CRD schema accepts what the parser rejects"
    assert any(EXPECTED[path.name]["apiserver"] in error for error in errors), errors


def test_the_three_llama_tiers_are_ordered_tight_to_loose() -> None:
    ide, chat, batch = load_tiers_yaml(EXAMPLES / "valid" / "llama-3.1-8b-tiers.yaml")
    assert (ide.name, chat.name, batch.name) == ("ide", "chat", "batch")
    assert (ide.slo.ttft_s, ide.slo.tpot_s) == (0.3, 0.03)
    assert (chat.slo.ttft_s, chat.slo.tpot_s) == (0.5, 0.05)
    assert (batch.slo.ttft_s, batch.slo.tpot_s) == (5.0, 0.1)
    assert ide.priority > chat.priority > batch.priority
    assert ide.slo.at_least_as_tight_as(chat.slo) and chat.slo.at_least_as_tight_as(batch.slo)
    assert len({t.model for t in (ide, chat, batch)}) == 1
