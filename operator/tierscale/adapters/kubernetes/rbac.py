"""Every (verb, resource) the Kubernetes adapter uses: the source of its RBAC rules.

The Helm chart's Role and ClusterRole are derived from this list, docs/design.md prints
it, and an e2e test runs every adapter call as a ServiceAccount granted exactly these
rules, so a call added without its rule fails there, not in a user's cluster. (kopf's
own needs, such as watching SLOTiers, belong to the handlers, not to this list.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["cluster", "operator-namespace"]


@dataclass(frozen=True, slots=True)
class Rule:
    api_group: str
    """"" is the core group."""
    resource: str
    verbs: tuple[str, ...]
    scope: Scope
    """`cluster`: in every namespace with SLOTiers (and nodes); `operator-namespace`: only
    where the operator runs."""
    why: str


RULES: tuple[Rule, ...] = (
    Rule("apps", "deployments", ("get", "patch"), "cluster", "read; remove tierscale.dev/resume"),
    Rule("apps", "deployments/scale", ("update", "patch"), "cluster", "set or claim replicas"),
    Rule("", "pods", ("list", "patch"), "cluster", "pod-deletion-cost before a scale-down"),
    Rule("autoscaling", "horizontalpodautoscalers", ("list",), "cluster", "detect an HPA"),
    Rule("keda.sh", "scaledobjects", ("list",), "cluster", "detect a KEDA ScaledObject"),
    Rule("", "nodes", ("list",), "cluster", "allocatable GPUs per accelerator"),
    Rule("tierscale.dev", "slotiers", ("get",), "cluster", "generation, conditions, uid"),
    Rule("tierscale.dev", "slotiers/status", ("patch",), "cluster", "write status"),
    Rule("events.k8s.io", "events", ("create",), "cluster", "Events on SLOTiers"),
    Rule("", "configmaps", ("get", "create", "patch"), "operator-namespace", "planner state"),
)


def policy_rules(scope: Scope) -> list[dict[str, Any]]:
    """The rules of one scope as RBAC `PolicyRule`s (for a ClusterRole or a Role)."""
    return [
        {"apiGroups": [r.api_group], "resources": [r.resource], "verbs": list(r.verbs)}
        for r in RULES
        if r.scope == scope
    ]
