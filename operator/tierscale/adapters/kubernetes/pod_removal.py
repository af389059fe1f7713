"""Which pods a scale-down removes: the ones with the least work in flight.

A Deployment's ReplicaSet picks the pods to delete itself, in this order (ReplicaSet
controller, `ActivePodsWithRanks`): unscheduled, then pending, then not-ready pods, then
the lowest `controller.kubernetes.io/pod-deletion-cost`, then newer ones. tierscale
cannot name pods in `/scale`, so before a scale-down by k it sets a low deletion cost on
the k pods it wants gone and removes its mark from the others; the ReplicaSet then removes
exactly those. Pure: pods in, the annotation patches out.

Order of preference (first = removed first):
1. pods that are not Ready: they get no traffic (Endpoints leave them out) and the
   ReplicaSet removes them first anyway;
2. Ready pods by requests in flight (running + waiting), fewest first;
3. Ready pods whose in-flight count is unknown (no sample for them), last: a pod we
   cannot see may be busy, and cutting its requests is the one mistake this step exists
   to avoid, while a pod known to be idle is certainly safe to remove;
4. ties: the newest pod first (the ReplicaSet's own tie-break), then by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tierscale.adapters.kubernetes.names import DELETION_COST_ANNOTATION, DELETION_COST_REMOVE


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A live pod of the Deployment, as far as choosing removals needs it."""

    name: str
    ready: bool
    created_s: float
    deletion_cost: str | None = None
    """The current value of the deletion-cost annotation, if any."""


def live_pods(pods: Sequence[Mapping[str, Any]], deployment: str) -> list[PodInfo]:
    """The Deployment's pods that a scale-down can remove: owned by one of its
    ReplicaSets (`<deployment>-<hash>`), not terminating, not finished."""
    out: list[PodInfo] = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        status = pod.get("status") or {}
        if metadata.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        if not _owned_by(metadata, deployment):
            continue
        created = parse_time(metadata.get("creationTimestamp"))
        out.append(
            PodInfo(
                name=str(metadata.get("name", "")),
                ready=_is_ready(status),
                created_s=created.timestamp() if created else 0.0,
                deletion_cost=(metadata.get("annotations") or {}).get(DELETION_COST_ANNOTATION),
            )
        )
    return out


def choose_removals(
    pods: Sequence[PodInfo], remove_count: int, inflight_by_pod: Mapping[str, float]
) -> frozenset[str]:
    """The names of the `remove_count` pods to remove first (see the module docstring)."""
    if remove_count <= 0:
        return frozenset()

    def rank(pod: PodInfo) -> tuple[bool, bool, float, float, str]:
        inflight = inflight_by_pod.get(pod.name)
        known = inflight is not None and math.isfinite(inflight)
        work = float(inflight) if known and inflight is not None else 0.0
        return (pod.ready, not known, work, -pod.created_s, pod.name)

    return frozenset(p.name for p in sorted(pods, key=rank)[:remove_count])


def cost_patches(pods: Sequence[PodInfo], removals: frozenset[str]) -> dict[str, str | None]:
    """pod name -> the deletion-cost value to write (None: remove the annotation), only
    for pods whose annotation changes."""
    out: dict[str, str | None] = {}
    for pod in pods:
        want = DELETION_COST_REMOVE if pod.name in removals else None
        if pod.deletion_cost != want:
            out[pod.name] = want
    return out


def _is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _owned_by(metadata: Mapping[str, Any], deployment: str) -> bool:
    return any(
        ref.get("kind") == "ReplicaSet"
        and ref.get("controller")
        and str(ref.get("name", "")).startswith(f"{deployment}-")
        for ref in metadata.get("ownerReferences") or []
    )


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp of the API server, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
