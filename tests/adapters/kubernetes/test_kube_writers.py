"""The rules that decide when tierscale leaves a Deployment's replicas to another writer."""

from __future__ import annotations

from typing import Any

from tierscale.adapters.kubernetes import writers
from tierscale.adapters.kubernetes.writers import ReplicasWrite, WriterEvidence

KUBECTL = (ReplicasWrite("kubectl", "scale"),)
TIERSCALE = (ReplicasWrite("tierscale", "scale"),)


def verdict(evidence: WriterEvidence, *, wrote: bool = False) -> str | None:
    other = writers.other_writer(evidence, tierscale_wrote=wrote)
    return None if other is None else f"{other.kind} {other.name}"


def test_an_hpa_or_scaled_object_is_a_conflict_while_it_exists() -> None:
    assert verdict(WriterEvidence(hpas=("web",), owners=TIERSCALE)) == "HorizontalPodAutoscaler web"
    both = WriterEvidence(hpas=("keda-hpa-so",), scaled_objects=("so",), owners=TIERSCALE)
    assert verdict(both) == "ScaledObject so"  # the object a person wrote, not KEDA's HPA
    # A hand-back does not override an autoscaler that still exists.
    assert verdict(WriterEvidence(hpas=("web",), resume_requested=True)) == (
        "HorizontalPodAutoscaler web"
    )
    # Gone: its controller's trace on spec.replicas does not keep the conflict.
    trace = (ReplicasWrite("kube-controller-manager", "scale"),)
    assert verdict(WriterEvidence(owners=trace), wrote=True) is None
    assert verdict(WriterEvidence(owners=(ReplicasWrite("keda", "scale"),))) is None


def test_tierscale_owning_replicas_is_no_conflict() -> None:
    assert verdict(WriterEvidence(owners=TIERSCALE), wrote=True) is None
    # Co-owned after a hand-back (server-side apply of the same value).
    assert verdict(WriterEvidence(owners=KUBECTL + TIERSCALE), wrote=True) is None


def test_a_manual_scale_is_a_conflict_until_handed_back() -> None:
    assert verdict(WriterEvidence(owners=KUBECTL), wrote=True) == "FieldManager kubectl"
    # Even before tierscale ever wrote (a person scaled before the SLOTier existed).
    assert verdict(WriterEvidence(owners=KUBECTL)) == "FieldManager kubectl"
    assert verdict(WriterEvidence(owners=KUBECTL, resume_requested=True)) is None


def test_the_manifest_owner_is_adopted_until_tierscale_wrote() -> None:
    created = (ReplicasWrite("helm", ""),)
    assert verdict(WriterEvidence(owners=created), wrote=False) is None
    # After tierscale owned the replicas, a manifest that sets them again fights it.
    assert verdict(WriterEvidence(owners=created), wrote=True) == "FieldManager helm"
    assert verdict(WriterEvidence(owners=created, resume_requested=True), wrote=True) is None


def test_shared_owners_are_named_in_a_stable_order() -> None:
    shared = (ReplicasWrite("flux", ""), ReplicasWrite("argocd", ""))
    assert verdict(WriterEvidence(owners=shared), wrote=True) == "FieldManager argocd"


def test_the_detail_prints_the_command_that_hands_back() -> None:
    evidence = WriterEvidence(namespace="llm", deployment="gold", owners=KUBECTL)
    other = writers.other_writer(evidence, tierscale_wrote=True)
    assert other is not None
    assert other.describe() == (
        "FieldManager kubectl (set spec.replicas through /scale; to hand them back: "
        "kubectl -n llm annotate deployment gold tierscale.dev/resume=true)"
    )


def test_memory_remembers_ownership_per_deployment_uid() -> None:
    memory = writers.WriterMemory()
    manifest = WriterEvidence(owners=(ReplicasWrite("helm", ""),))
    assert memory.judge("llm/gold", "uid-1", manifest) is None  # adopted at first sight
    assert memory.judge("llm/gold", "uid-1", WriterEvidence(owners=TIERSCALE)) is None
    assert memory.judge("llm/gold", "uid-1", manifest) is not None  # re-applied since
    assert memory.judge("llm/gold", "uid-2", manifest) is None  # re-created: a new one
    memory.wrote("llm/gold", "uid-2")
    assert memory.judge("llm/gold", "uid-2", manifest) is not None


# ----------------------------------------------------------------------------- parsing


def _entry(manager: str, fields: dict[str, Any], subresource: str = "") -> dict[str, Any]:
    entry = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        entry["subresource"] = subresource
    else:
        entry["time"] = "2025-03-01T12:00:00Z"  # the API server records none through /scale
    return entry


def _hpa(name: str, kind: str, target: str) -> dict[str, Any]:
    ref = {"apiVersion": "apps/v1", "kind": kind, "name": target}
    return {"metadata": {"name": name}, "spec": {"scaleTargetRef": ref}}


def test_evidence_from_a_deployment_as_the_api_server_returns_it() -> None:
    manifest = {"f:metadata": {"f:labels": {}}, "f:spec": {"f:selector": {}, "f:template": {}}}
    deployment = {
        "spec": {"replicas": 3},
        "metadata": {
            "name": "gold",
            "namespace": "llm",
            "annotations": {"tierscale.dev/resume": ""},
            "managedFields": [
                _entry("kubectl-client-side-apply", manifest),
                _entry("kubectl", {"f:spec": {"f:replicas": {}}}, "scale"),
                _entry("kube-controller-manager", {"f:status": {}}, "status"),
            ],
        },
    }
    hpas = [
        _hpa("other", "Deployment", "silver"),
        _hpa("mine", "Deployment", "gold"),
        _hpa("sts", "StatefulSet", "gold"),
    ]
    scaled = [{"metadata": {"name": "so"}, "spec": {"scaleTargetRef": {"name": "gold"}}}]
    got = writers.evidence(deployment, hpas, scaled)
    assert got.hpas == ("mine",)
    assert got.scaled_objects == ("so",)  # kind and apiVersion default to a Deployment
    assert got.owners == KUBECTL
    assert (got.replicas, got.resume_requested) == (3, True)
    assert (got.namespace, got.deployment) == ("llm", "gold")
