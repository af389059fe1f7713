"""The rules that decide when tierscale leaves a Deployment's replicas to another writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tierscale.adapters.kubernetes import writers
from tierscale.adapters.kubernetes.writers import ReplicasWrite, WriterEvidence

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def verdict(evidence: WriterEvidence, *, wrote: bool = False) -> str | None:
    other = writers.other_writer(evidence, tierscale_wrote=wrote)
    return None if other is None else f"{other.kind} {other.name}"


def test_an_hpa_or_scaled_object_is_a_conflict_while_it_exists() -> None:
    owned = (ReplicasWrite("tierscale", "scale", at(0)),)
    assert verdict(WriterEvidence(hpas=("web",), owners=owned)) == "HorizontalPodAutoscaler web"
    both = WriterEvidence(hpas=("keda-hpa-so",), scaled_objects=("so",), owners=owned)
    assert verdict(both) == "ScaledObject so"  # the object a person wrote, not KEDA's HPA
    # Gone: its controller's trace on spec.replicas does not keep the conflict.
    trace = (ReplicasWrite("kube-controller-manager", "scale", at(5)),)
    assert verdict(WriterEvidence(owners=trace), wrote=True) is None


def test_tierscale_owning_replicas_is_no_conflict() -> None:
    owners = (ReplicasWrite("tierscale", "scale", at(3)),)
    assert verdict(WriterEvidence(owners=owners), wrote=True) is None


def test_a_manual_scale_is_a_conflict_until_handed_back() -> None:
    scaled = (ReplicasWrite("kubectl", "scale", at(10)),)
    assert verdict(WriterEvidence(owners=scaled), wrote=True) == "FieldManager kubectl"
    # Even before tierscale ever wrote (a person scaled before the SLOTier existed).
    assert verdict(WriterEvidence(owners=scaled), wrote=False) == "FieldManager kubectl"
    assert verdict(WriterEvidence(owners=scaled, resumed_at=at(9))) == "FieldManager kubectl"
    # Same second: cannot be ordered, the person's replicas win.
    assert verdict(WriterEvidence(owners=scaled, resumed_at=at(10))) == "FieldManager kubectl"
    assert verdict(WriterEvidence(owners=scaled, resumed_at=at(11))) is None
    # A new manual scale after the hand-back is a new conflict.
    again = (ReplicasWrite("kubectl", "scale", at(20)),)
    assert verdict(WriterEvidence(owners=again, resumed_at=at(11))) == "FieldManager kubectl"


def test_the_manifest_owner_is_adopted_until_tierscale_wrote() -> None:
    created = (ReplicasWrite("helm", "", at(0)),)
    assert verdict(WriterEvidence(owners=created), wrote=False) is None
    # After tierscale owned the replicas, a manifest that sets them again fights it.
    assert verdict(WriterEvidence(owners=created), wrote=True) == "FieldManager helm"
    assert verdict(WriterEvidence(owners=created, resumed_at=at(1)), wrote=True) is None


def test_the_newest_foreign_owner_is_named() -> None:
    shared = (ReplicasWrite("argocd", "", at(1)), ReplicasWrite("flux", "", at(7)))
    assert verdict(WriterEvidence(owners=shared), wrote=True) == "FieldManager flux"


def test_the_detail_says_how_to_hand_back() -> None:
    other = writers.other_writer(
        WriterEvidence(
            namespace="llm", deployment="gold", owners=(ReplicasWrite("kubectl", "scale", at(1)),)
        ),
        tierscale_wrote=True,
    )
    assert other is not None
    assert "through /scale at 2025-03-01T12:00:01Z" in other.detail
    assert 'kubectl -n llm annotate deployment gold tierscale.dev/resume="$(date +%s)"' in (
        other.describe()
    )


# ----------------------------------------------------------------------------- parsing


def _entry(
    manager: str, time: str, fields: dict[str, Any], subresource: str = ""
) -> dict[str, Any]:
    entry = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


MANIFEST_FIELDS = {
    "f:metadata": {
        "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}
    },
    "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {}},
}


def test_evidence_from_a_deployment_as_the_api_server_returns_it() -> None:
    deployment = {
        "metadata": {
            "name": "gold",
            "namespace": "llm",
            "annotations": {"tierscale.dev/resume": "1700000000"},
            "managedFields": [
                _entry(
                    "kubectl-client-side-apply",
                    "2025-03-01T12:00:00Z",
                    {**MANIFEST_FIELDS, "f:spec": {"f:selector": {}}},
                ),
                _entry("kubectl", "2025-03-01T12:00:05Z", {"f:spec": {"f:replicas": {}}}, "scale"),
                _entry(
                    "kubectl-annotate",
                    "2025-03-01T12:00:09Z",
                    {"f:metadata": {"f:annotations": {"f:tierscale.dev/resume": {}}}},
                ),
                _entry(
                    "kube-controller-manager", "2025-03-01T12:00:01Z", {"f:status": {}}, "status"
                ),
            ],
        }
    }
    hpas = [
        {
            "metadata": {"name": "other"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "silver"}
            },
        },
        {
            "metadata": {"name": "mine"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gold"}
            },
        },
        {
            "metadata": {"name": "sts"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "gold"}
            },
        },
    ]
    scaled = [{"metadata": {"name": "so"}, "spec": {"scaleTargetRef": {"name": "gold"}}}]
    got = writers.evidence(deployment, hpas, scaled)
    assert got.hpas == ("mine",)
    assert got.scaled_objects == ("so",)  # kind and apiVersion default to a Deployment
    assert got.owners == (ReplicasWrite("kubectl", "scale", at(5)),)
    assert got.resumed_at == at(9)
    assert (got.namespace, got.deployment) == ("llm", "gold")


def test_no_resume_time_without_the_annotation() -> None:
    fields = {"f:metadata": {"f:annotations": {"f:tierscale.dev/resume": {}}}}
    managed = [_entry("kubectl-annotate", "2025-03-01T12:00:09Z", fields)]
    assert writers.resumed_at(managed, {}) is None


@pytest.mark.parametrize("value", [None, "", "yesterday", 5])
def test_unparsable_times_are_none(value: object) -> None:
    assert writers.parse_time(value) is None
