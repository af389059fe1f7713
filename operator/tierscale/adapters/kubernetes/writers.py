"""Who else sets a Deployment's replicas, and when tierscale must stay away: the rules.

Two controllers writing `spec.replicas` fight; tierscale detects the other one and steps
back instead. Evidence, all read from the cluster on every tick:

1. an HPA (autoscaling/v2) or a KEDA ScaledObject whose `scaleTargetRef` is the
   Deployment: a conflict while the object exists (the ScaledObject is named before the
   HPA KEDA creates for it). Delete it and tierscale resumes by itself on the next tick;
   the replicas it left behind are where tierscale starts from;
2. `metadata.managedFields`: the field manager that owns `spec.replicas`. tierscale owns
   it after its first write (`/scale`, manager `tierscale`). Another manager owns it when
   it wrote a different value since:
   - written through `/scale` (`kubectl scale`, another autoscaler): a manual override, a
     conflict until a person hands the replicas back (below);
   - written through the Deployment itself (`kubectl apply`/`edit`, Helm, Argo CD
     re-applying a manifest that sets `replicas`): the manifest's owner before tierscale
     ever wrote is adopted (that is how every Deployment starts); after tierscale wrote,
     a re-applied manifest fights tierscale, so it is a conflict (handed back the same
     way);
   - the managers of HPA and KEDA (`kube-controller-manager`, `keda`) are judged by rule
     1 only: their objects, not their traces, decide.

Handing back: a person sets the annotation `tierscale.dev/resume` (any value) on the
Deployment; while it is there, no field manager holds tierscale off. When tierscale next
acts on the Deployment it takes the replicas over as they are: it claims `spec.replicas`
(a server-side apply of the current value on `/scale`, which makes it a co-owner without
changing anything) and removes the annotation, both with resourceVersion preconditions.
The annotation is a one-shot token, so one left behind cannot hand back a later manual
change, and the hand-back survives a restart (the ownership is in the cluster). A manual
write after that takes ownership again: a new conflict. (managedFields times cannot
order a write and a hand-back: the API server records no time on entries written
through `/scale`, and a Deployment's generation moves with its annotations too.)

The verdict is a pure function of this evidence and of one bit the adapter remembers per
Deployment (`WriterMemory`: has tierscale owned its replicas since the process started).
tierscale's own actions never change it: in conflict it writes nothing, otherwise its
writes make it the owner. So it never flaps; only someone else's action (creating or
deleting an HPA, a manual scale, the resume annotation) moves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierscale.adapters.kubernetes.names import (
    AUTOSCALER_MANAGERS,
    FIELD_MANAGER,
    RESUME_ANNOTATION,
)
from tierscale.loop.ports import OtherWriter

HPA_KIND = "HorizontalPodAutoscaler"
SCALED_OBJECT_KIND = "ScaledObject"
FIELD_MANAGER_KIND = "FieldManager"


@dataclass(frozen=True, slots=True)
class ReplicasWrite:
    """A field manager that owns a Deployment's `spec.replicas` (a managedFields entry)."""

    manager: str
    subresource: str
    """`scale` when written through `/scale`, empty when through the Deployment itself."""


@dataclass(frozen=True, slots=True)
class WriterEvidence:
    """Everything the rules look at, for one Deployment."""

    namespace: str = ""
    deployment: str = ""
    replicas: int | None = None
    """`spec.replicas`."""
    scaled_objects: tuple[str, ...] = ()
    """ScaledObjects targeting it, sorted."""
    hpas: tuple[str, ...] = ()
    """HPAs targeting it, sorted."""
    owners: tuple[ReplicasWrite, ...] = ()
    """Managers owning `spec.replicas` (more than one only for shared server-side apply)."""
    resume_requested: bool = False
    """`tierscale.dev/resume` is set: a person hands the replicas back."""

    @property
    def owned_by_tierscale(self) -> bool:
        return any(o.manager == FIELD_MANAGER for o in self.owners)

    @property
    def autoscaled(self) -> bool:
        return bool(self.scaled_objects or self.hpas)


def other_writer(evidence: WriterEvidence, *, tierscale_wrote: bool) -> OtherWriter | None:
    """The writer tierscale must leave the Deployment's replicas to, or None.

    `tierscale_wrote`: tierscale has owned these replicas since the adapter started (a
    manifest owner after that is a re-apply, not the Deployment's creation)."""
    if evidence.scaled_objects:
        return OtherWriter(
            SCALED_OBJECT_KIND, evidence.scaled_objects[0], "KEDA scales this Deployment"
        )
    if evidence.hpas:
        return OtherWriter(HPA_KIND, evidence.hpas[0], "it scales this Deployment")
    if evidence.owned_by_tierscale or evidence.resume_requested:
        return None
    for write in sorted(evidence.owners, key=lambda w: (w.manager, w.subresource)):
        if write.manager in AUTOSCALER_MANAGERS:
            continue
        if write.subresource == "scale" or tierscale_wrote:
            return OtherWriter(FIELD_MANAGER_KIND, write.manager, _detail(write, evidence))
    return None


class WriterMemory:
    """The one bit the adapter remembers per Deployment (by uid) and the one place the
    rules are applied with it (the real adapter and the fake share it)."""

    def __init__(self) -> None:
        self._owned: set[tuple[str, str]] = set()

    def judge(self, pool_key: str, uid: str, evidence: WriterEvidence) -> OtherWriter | None:
        if evidence.owned_by_tierscale:
            self._owned.add((pool_key, uid))
        return other_writer(evidence, tierscale_wrote=(pool_key, uid) in self._owned)

    def wrote(self, pool_key: str, uid: str) -> None:
        """tierscale's write of the replicas landed: it owns them now."""
        self._owned.add((pool_key, uid))


def evidence(
    deployment: Mapping[str, Any],
    hpas: Iterable[Mapping[str, Any]],
    scaled_objects: Iterable[Mapping[str, Any]],
) -> WriterEvidence:
    """The evidence about one Deployment from its JSON and its namespace's HPAs and
    ScaledObjects (JSON as the API server returns them)."""
    metadata = deployment.get("metadata") or {}
    name = str(metadata.get("name", ""))
    replicas = (deployment.get("spec") or {}).get("replicas")
    return WriterEvidence(
        namespace=str(metadata.get("namespace", "")),
        deployment=name,
        replicas=int(replicas) if isinstance(replicas, int) else None,
        scaled_objects=tuple(sorted(_names_targeting(scaled_objects, name, default_kind=True))),
        hpas=tuple(sorted(_names_targeting(hpas, name, default_kind=False))),
        owners=replicas_owners(metadata.get("managedFields") or []),
        resume_requested=RESUME_ANNOTATION in (metadata.get("annotations") or {}),
    )


def replicas_owners(managed_fields: Sequence[Mapping[str, Any]]) -> tuple[ReplicasWrite, ...]:
    return tuple(
        ReplicasWrite(
            manager=str(entry.get("manager", "")),
            subresource=str(entry.get("subresource") or ""),
        )
        for entry in managed_fields
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    )


def targets(obj: Mapping[str, Any], deployment: str, *, default_kind: bool) -> bool:
    """Whether an HPA's or ScaledObject's `scaleTargetRef` is this Deployment (a
    ScaledObject's kind defaults to Deployment, an HPA's is required)."""
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    kind = ref.get("kind") or ("Deployment" if default_kind else None)
    api_version = str(ref.get("apiVersion") or "apps/v1")
    return (
        ref.get("name") == deployment
        and kind == "Deployment"
        and api_version.split("/")[0] in {"apps", "extensions"}
    )


def _names_targeting(
    objects: Iterable[Mapping[str, Any]], deployment: str, *, default_kind: bool
) -> list[str]:
    return [
        str((obj.get("metadata") or {}).get("name", ""))
        for obj in objects
        if targets(obj, deployment, default_kind=default_kind)
    ]


def _detail(write: ReplicasWrite, evidence: WriterEvidence) -> str:
    via = "through /scale" if write.subresource == "scale" else "in the Deployment"
    return (
        f"set spec.replicas {via}; to hand them back: kubectl -n {evidence.namespace} "
        f"annotate deployment {evidence.deployment} {RESUME_ANNOTATION}=true"
    )
