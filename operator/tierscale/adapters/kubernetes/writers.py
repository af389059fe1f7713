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
     conflict until a person hands the replicas back by writing the annotation
     `tierscale.dev/resume` on the Deployment (a new value each time, e.g. the date: an
     unchanged value is no write). A replicas write older than the annotation's write is
     handed back; a newer one is a new conflict;
   - written through the Deployment itself (`kubectl apply`/`edit`, Helm, Argo CD
     re-applying a manifest that sets `replicas`): the manifest's owner before tierscale
     ever wrote is adopted (that is how every Deployment starts); after tierscale wrote,
     a re-applied manifest fights tierscale, so it is a conflict (resumed the same way);
   - the managers of HPA and KEDA (`kube-controller-manager`, `keda`) are judged by rule
     1 only: their objects, not their traces, decide.

The verdict is a pure function of this evidence and of one bit the adapter remembers per
Deployment (has tierscale owned its replicas since the process started). tierscale's own
actions never change it: in conflict it writes nothing, otherwise its writes make it the
owner. So it never flaps; only someone else's action (creating or deleting an HPA, a
manual scale, the resume annotation) moves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    time: datetime | None
    """The entry's time: that manager's last write (one-second resolution)."""


@dataclass(frozen=True, slots=True)
class WriterEvidence:
    """Everything the rules look at, for one Deployment."""

    namespace: str = ""
    deployment: str = ""
    scaled_objects: tuple[str, ...] = ()
    """ScaledObjects targeting it, sorted."""
    hpas: tuple[str, ...] = ()
    """HPAs targeting it, sorted."""
    owners: tuple[ReplicasWrite, ...] = ()
    """Managers owning `spec.replicas` (more than one only for shared server-side apply)."""
    resumed_at: datetime | None = None
    """When `tierscale.dev/resume` was last written; None: not set."""

    @property
    def owned_by_tierscale(self) -> bool:
        return any(o.manager == FIELD_MANAGER for o in self.owners)


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
    if evidence.owned_by_tierscale:
        return None
    newest_first = sorted(evidence.owners, key=_time_key, reverse=True)
    for write in newest_first:
        if write.manager in AUTOSCALER_MANAGERS or _handed_back(write, evidence.resumed_at):
            continue
        if write.subresource == "scale" or tierscale_wrote:
            return OtherWriter(FIELD_MANAGER_KIND, write.manager, _detail(write, evidence))
    return None


def evidence(
    deployment: Mapping[str, Any],
    hpas: Iterable[Mapping[str, Any]],
    scaled_objects: Iterable[Mapping[str, Any]],
) -> WriterEvidence:
    """The evidence about one Deployment from its JSON and its namespace's HPAs and
    ScaledObjects (JSON as the API server returns them)."""
    metadata = deployment.get("metadata") or {}
    name = str(metadata.get("name", ""))
    managed = metadata.get("managedFields") or []
    return WriterEvidence(
        namespace=str(metadata.get("namespace", "")),
        deployment=name,
        scaled_objects=tuple(sorted(_names_targeting(scaled_objects, name, default_kind=True))),
        hpas=tuple(sorted(_names_targeting(hpas, name, default_kind=False))),
        owners=replicas_owners(managed),
        resumed_at=resumed_at(managed, metadata.get("annotations") or {}),
    )


def replicas_owners(managed_fields: Sequence[Mapping[str, Any]]) -> tuple[ReplicasWrite, ...]:
    return tuple(
        ReplicasWrite(
            manager=str(entry.get("manager", "")),
            subresource=str(entry.get("subresource") or ""),
            time=parse_time(entry.get("time")),
        )
        for entry in managed_fields
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    )


def resumed_at(
    managed_fields: Sequence[Mapping[str, Any]], annotations: Mapping[str, Any]
) -> datetime | None:
    """When the resume annotation was last written: the time of the managedFields entry
    that owns it (that manager's last write). None when the annotation is not set."""
    if RESUME_ANNOTATION not in annotations:
        return None
    key = f"f:{RESUME_ANNOTATION}"
    times = [
        parse_time(entry.get("time"))
        for entry in managed_fields
        if key in _owned_annotations(entry)
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


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


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _names_targeting(
    objects: Iterable[Mapping[str, Any]], deployment: str, *, default_kind: bool
) -> list[str]:
    return [
        str((obj.get("metadata") or {}).get("name", ""))
        for obj in objects
        if targets(obj, deployment, default_kind=default_kind)
    ]


def _owned_annotations(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = (entry.get("fieldsV1") or {}).get("f:metadata") or {}
    annotations: Mapping[str, Any] = metadata.get("f:annotations") or {}
    return annotations


def _handed_back(write: ReplicasWrite, resumed: datetime | None) -> bool:
    """Strictly later: a resume in the same second as the write cannot be ordered, and
    leaving a person's replicas alone is the safe side."""
    return resumed is not None and write.time is not None and resumed > write.time


def _detail(write: ReplicasWrite, evidence: WriterEvidence) -> str:
    via = "through /scale" if write.subresource == "scale" else "in the Deployment"
    when = f" at {write.time.strftime('%Y-%m-%dT%H:%M:%SZ')}" if write.time else ""
    return (
        f"set spec.replicas {via}{when}; to hand them back: kubectl -n {evidence.namespace} "
        f'annotate deployment {evidence.deployment} {RESUME_ANNOTATION}="$(date +%s)" '
        "--overwrite"
    )


def _time_key(write: ReplicasWrite) -> float:
    return write.time.timestamp() if write.time is not None else float("-inf")
