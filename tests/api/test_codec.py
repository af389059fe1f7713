"""Parsing SLOTier resources into domain tiers: defaults, errors, files, round trips."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierscale.api.codec import SpecError, load_tiers_yaml, parse_spec, to_resource, to_tier
from tierscale.api.durations import DURATION_PATTERN, format_duration, parse_duration
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slotiers" / "valid"
MINIMAL: dict[str, Any] = {
    "apiVersion": "tierscale.dev/v1alpha1",
    "kind": "SLOTier",
    "metadata": {"name": "chat", "namespace": "inference"},
    "spec": {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "slo": {"ttft": "500ms", "tpot": "50ms"},
        "pool": {"deployment": "llama-8b-chat", "maxReplicas": 6},
    },
}


def _body(**spec_changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(MINIMAL)
    body["spec"].update(spec_changes)
    return body


def _errors(body: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        to_tier(body)
    return [str(e) for e in caught.value.errors]


def test_defaults_are_applied() -> None:
    tier = to_tier(MINIMAL)
    assert tier == Tier(
        name="chat",
        namespace="inference",
        model="meta-llama/Llama-3.1-8B-Instruct",
        slo=Slo(ttft_s=0.5, tpot_s=0.05, percentile=99.0, attainment_frac=0.99),
        pool=Pool(deployment="llama-8b-chat", min_replicas=0, max_replicas=6, gpus_per_replica=1),
        priority=0,
        borrow=True,
        lend=True,
        scaling=Scaling(
            cold_start_s=120.0,
            scale_down_stabilization_s=300.0,
            max_scale_up_replicas=4,
            max_scale_down_replicas=1,
        ),
        routing_header="x-slo-tier",
        routing_value="chat",
    )


def test_headroom_is_parsed_round_tripped_and_bounded() -> None:
    tier = to_tier(_body(scaling={"headroom": 1.5}))
    assert tier.scaling.headroom == 1.5
    assert to_resource(tier)["spec"]["scaling"]["headroom"] == 1.5
    assert to_tier(to_resource(tier)) == tier
    assert _errors(_body(scaling={"headroom": 0.8})) == [
        "spec.scaling.headroom: Invalid value: 0.8: should be greater than or equal to 1"
    ]
    assert _errors(_body(scaling={"headroom": 5})) == [
        "spec.scaling.headroom: Invalid value: 5: should be less than or equal to 4"
    ]


def test_namespace_defaults_to_default() -> None:
    body = copy.deepcopy(MINIMAL)
    del body["metadata"]["namespace"]
    assert to_tier(body).key == "default/chat"


def test_explicit_routing_value_wins_over_the_name() -> None:
    assert to_tier(_body(routing={"value": "interactive"})).routing_value == "interactive"


def test_nulls_are_pruned_then_defaulted_like_the_api_server() -> None:
    tier = to_tier(_body(priority=None, routing=None, scaling={"coldStart": None}))
    assert (tier.priority, tier.routing_header, tier.scaling.cold_start_s) == (
        0,
        "x-slo-tier",
        120.0,
    )


def test_integral_floats_are_integers_as_kubectl_sends_them() -> None:
    body = _body(pool={"deployment": "d", "maxReplicas": 3.0})
    assert to_tier(body).pool.max_replicas == 3
    assert (
        "must be of type integer" in _errors(_body(pool={"deployment": "d", "maxReplicas": 3.5}))[0]
    )


@pytest.mark.parametrize("value", [True, "3", [3], {"n": 3}])
def test_integers_are_never_coerced(value: object) -> None:
    (error,) = _errors(_body(pool={"deployment": "d", "maxReplicas": value}))
    assert error.startswith("spec.pool.maxReplicas: Invalid value:")
    assert error.endswith("must be of type integer")


def test_all_errors_are_reported_at_once_with_their_paths() -> None:
    body = _body(slo={"ttft": "fast", "tpot": "30ms", "percentile": 0}, priority=5000)
    del body["spec"]["model"]
    assert _errors(body) == [
        "spec.model: Required value",
        'spec.slo.ttft: Invalid value: "fast": '
        "should match '^[0-9]{1,8}(\\.[0-9]{1,3})?(ms|s|m)$' "
        "(a duration like 300ms, 5s or 1.5m)",
        "spec.slo.percentile: Invalid value: 0: should be greater than 0",
        "spec.priority: Invalid value: 5000: should be less than or equal to 1000",
    ]


def test_spec_error_is_readable_and_structured() -> None:
    with pytest.raises(SpecError) as caught:
        to_tier(_body(pool={"deployment": "d", "minReplicas": 3, "maxReplicas": 2}))
    err = caught.value
    assert [e.path for e in err.errors] == ["spec.pool"]
    assert str(err) == (
        "invalid SLOTier (1 error)\n  spec.pool: Invalid value: minReplicas must be <= maxReplicas"
    )


def test_envelope_and_metadata_are_checked() -> None:
    body = copy.deepcopy(MINIMAL)
    body["apiVersion"] = "tierscale.dev/v1"
    body["kind"] = "Deployment"
    body["metadata"] = {"name": "Not_A_Name"}
    body["extra"] = 1
    assert [e.split(":")[0] for e in _errors(body)] == ["apiVersion", "kind", "extra"]
    body = copy.deepcopy(MINIMAL)
    body["metadata"] = {"name": "Not_A_Name", "namespace": "ok"}
    (error,) = _errors(body)
    assert error.startswith('metadata.name: Invalid value: "Not_A_Name": a lowercase RFC 1123')
    no_name = copy.deepcopy(MINIMAL)
    no_name["metadata"] = {}
    assert _errors(no_name) == ["metadata.name: Required value: name is required"]
    no_spec = copy.deepcopy(MINIMAL)
    del no_spec["spec"]
    assert _errors(no_spec) == ["spec: Required value"]
    assert _errors(_body() | {"spec": "text"}) == [
        'spec: Invalid value: "text": must be of type object'
    ]


def test_parse_spec_returns_the_api_model_with_snake_case_fields() -> None:
    spec = parse_spec(MINIMAL["spec"])
    assert spec.pool.max_replicas == 6 and spec.scaling.cold_start == "120s"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_round_trip_through_the_manifest_is_lossless(path: Path) -> None:
    for tier in load_tiers_yaml(path):
        assert to_tier(to_resource(tier)) == tier


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300ms", 0.3),
        ("5s", 5.0),
        ("1.5m", 90.0),
        ("0s", 0.0),
        ("0.25s", 0.25),
        ("007s", 7.0),
        ("0.001ms", 1e-6),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("millis", ["19.6", "20.8", "0.1", "0.3", "123.456", "99999999.999"])
def test_parse_duration_is_the_float_nearest_the_written_decimal(millis: str) -> None:
    assert parse_duration(f"{millis}ms") == float(f"{millis}e-3")


@pytest.mark.parametrize(
    "text", ["", "5", "5 s", "1h", "1m30s", "-1s", ".5s", "5.s", "5s\n", "123456789s", "0.0001s"]
)
def test_parse_duration_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number and a unit"):
        parse_duration(text)


@settings(derandomize=True, deadline=None)
@given(st.from_regex(DURATION_PATTERN))
def test_every_duration_survives_a_format_round_trip(text: str) -> None:
    seconds = parse_duration(text.rstrip("\n"))
    formatted = format_duration(seconds)
    assert re.fullmatch(DURATION_PATTERN, formatted), formatted
    assert parse_duration(formatted) == pytest.approx(seconds, rel=1e-12, abs=1e-12)


@settings(derandomize=True, deadline=None)
@given(st.integers(min_value=0, max_value=10**13))
def test_format_duration_is_exact_or_refuses(micros: int) -> None:
    try:
        text = format_duration(micros / 1e6)
    except ValueError:
        return
    assert parse_duration(text) == pytest.approx(micros / 1e6, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.3, "300ms"), (0.0, "0ms"), (90.0, "90s"), (1.5, "1.5s"), (1e-6, "0.001ms")],
)
def test_format_duration_is_readable(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, 1e-7, 1e12])
def test_format_duration_refuses_unrepresentable_values(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot be written as a duration"):
        format_duration(seconds)


# ----------------------------------------------------------------------------- files


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_DOC = """\
apiVersion: tierscale.dev/v1alpha1
kind: SLOTier
metadata: {name: NAME}
spec:
  model: m
  slo: {ttft: 1s, tpot: 50ms}
  pool: {deployment: d, maxReplicas: 2}
"""


def test_file_errors_name_file_document_line_and_field(tmp_path: Path) -> None:
    bad = GOOD_DOC.replace("NAME", "two").replace("maxReplicas: 2", "maxReplicas: -2")
    path = _write(tmp_path, GOOD_DOC.replace("NAME", "one") + "---\n" + bad)
    with pytest.raises(SpecError) as caught:
        load_tiers_yaml(path)
    assert str(caught.value) == (
        f"{path}: invalid SLOTier (1 error)\n"
        "  document 2, line 15: spec.pool.maxReplicas: Invalid value: -2: "
        "should be greater than or equal to 1"
    )


def test_documents_of_other_kinds_are_rejected_not_skipped(tmp_path: Path) -> None:
    other = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n"
    path = _write(tmp_path, GOOD_DOC.replace("NAME", "one") + "---\n" + other)
    with pytest.raises(SpecError) as caught:
        load_tiers_yaml(path)
    assert [str(e) for e in caught.value.errors] == [
        'document 2, line 9: apiVersion: Invalid value: "apps/v1": expected tierscale.dev/v1alpha1',
        'document 2, line 10: kind: Invalid value: "Deployment": expected SLOTier',
    ]


def test_duplicate_tiers_are_rejected(tmp_path: Path) -> None:
    doc = GOOD_DOC.replace("NAME", "one")
    with pytest.raises(SpecError, match=r"duplicate SLOTier default/one \(first in document 1\)"):
        load_tiers_yaml(_write(tmp_path, doc + "---\n" + doc))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "not valid YAML"),
        ("", "no SLOTier documents"),
        ("---\n---\n", "no SLOTier documents"),
        ("- 1\n- 2\n", r"expected a mapping \(an SLOTier\), got \"array\""),
    ],
)
def test_malformed_files_are_rejected_clearly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        load_tiers_yaml(_write(tmp_path, text))
    assert str(tmp_path) in str(caught.value)


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read file"):
        load_tiers_yaml(tmp_path / "absent.yaml")
