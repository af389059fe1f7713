"""The testbed API server's audit log, read back: which requests a ServiceAccount made and
whether each was allowed, against the grants of the chart's RBAC.

The policy (`kwok/audit-policy.yaml`) records every request made as a ServiceAccount at
Metadata level, one JSON object per line (`Cluster.audit_log`). A request is
`(verb, api group, resource[/subresource])` as RBAC sees it: watches are `watch`, a
`list` with `watch=true` is `watch`, a server-side apply is `patch`. A denied request
has `authorization.k8s.io/decision: forbid` (HTTP 403).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Grant = tuple[str, str, str]
"""(verb, api group, resource[/subresource])."""


@dataclass(frozen=True, slots=True)
class Request:
    user: str
    verb: str
    group: str
    resource: str
    """`resource` or `resource/subresource`."""
    namespace: str | None
    name: str | None
    code: int | None
    decision: str | None
    """`allow` or `forbid` (the authorizer's), None when the stage carries none."""
    uri: str

    @property
    def grant(self) -> Grant:
        return (self.verb, self.group, self.resource)

    @property
    def denied(self) -> bool:
        return self.decision == "forbid" or self.code == 403


def read(path: Path, user: str, *, offset: int = 0) -> list[Request]:
    """Every audited request of `user` from byte `offset` on (one per request: the
    ResponseComplete stage, or ResponseStarted for a watch still open)."""
    out: dict[str, Request] = {}
    with path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            try:
                event = json.loads(raw)
            except ValueError:
                continue  # a line being written right now
            if (event.get("user") or {}).get("username") != user:
                continue
            request = _request(event)
            if request is not None:
                out[event.get("auditID", str(len(out)))] = request
    return list(out.values())


def _request(event: Mapping[str, Any]) -> Request | None:
    ref = event.get("objectRef") or {}
    resource = ref.get("resource")
    if not resource:
        return None  # discovery (/api, /apis): needs no RBAC rule of ours
    sub = ref.get("subresource")
    annotations = event.get("annotations") or {}
    return Request(
        user=event["user"]["username"],
        verb=event.get("verb", ""),
        group=ref.get("apiGroup", ""),
        resource=f"{resource}/{sub}" if sub else resource,
        namespace=ref.get("namespace"),
        name=ref.get("name"),
        code=(event.get("responseStatus") or {}).get("code"),
        decision=annotations.get("authorization.k8s.io/decision"),
        uri=event.get("requestURI", ""),
    )


def size(path: Path) -> int:
    """Where the log ends now (read from here to see only what follows)."""
    return path.stat().st_size if path.exists() else 0


def grants(rbac_document: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[Grant, str | None]:
    """Every (verb, group, resource) the chart's `files/rbac.yaml` grants -> why it may go
    unused in the suite (None: the suite must use it)."""
    out: dict[Grant, str | None] = {}
    for rules in rbac_document.values():
        for rule in rules:
            unexercised = rule.get("unexercised") or {}
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out[(verb, group, resource)] = unexercised.get(verb)
    return out


def rendered_grants(manifest: str) -> set[Grant]:
    """Every (verb, group, resource) of the Roles and ClusterRoles in a rendered chart."""
    import yaml

    out: set[Grant] = set()
    for doc in yaml.safe_load_all(manifest):
        if not doc or doc.get("kind") not in ("Role", "ClusterRole"):
            continue
        for rule in doc.get("rules") or []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((verb, group, resource))
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    requests: int
    used: Counter[Grant]
    denied: list[Request]
    unused: list[Grant]
    """Granted, never used, and not documented as unexercised."""
    unused_documented: dict[Grant, str]
    ungranted: list[Grant]
    """Used (and allowed by something else) but not in the chart's grants."""


def verdict(requests: Iterable[Request], granted: Mapping[Grant, str | None]) -> Verdict:
    listed = list(requests)
    used = Counter(r.grant for r in listed if not r.denied)
    denied = [r for r in listed if r.denied]
    unused = sorted(g for g, why in granted.items() if g not in used and why is None)
    documented = {g: why for g, why in granted.items() if g not in used and why is not None}
    ungranted = sorted(g for g in used if g not in granted)
    return Verdict(len(listed), used, denied, unused, documented, ungranted)
