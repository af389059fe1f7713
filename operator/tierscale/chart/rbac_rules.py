"""The chart's RBAC rules: the Kubernetes adapter's (`adapters.kubernetes.rbac.RULES`) plus
what kopf itself does for `tierscale run`, each with why.

Generated into `charts/tierscale/files/rbac.yaml`, which the chart's templates read, so a
rule is never copied by hand. Four bindings, by where the resource lives:

- `clusterScoped`: cluster-scoped resources (nodes; kopf's cluster-wide peering object),
  a ClusterRole with a ClusterRoleBinding;
- `tierNamespaces`: what the operator touches where SLOTiers live, a ClusterRole bound
  cluster-wide, or with a RoleBinding per namespace when `settings.namespaces` is set;
- `operatorNamespace`: a Role in the operator's namespace (planner state, routing);
- `peeringNamespaced`: kopf's per-namespace peering object, bound like tierNamespaces
  when `settings.namespaces` is set (kopf then peers per namespace).

`e2e/tests/test_rbac_audit.py` runs the operator with exactly these grants and reads the
API server's audit log: no request may be denied, and every granted (verb, resource) must
be used by the suite or carry an `unexercised` reason here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import yaml

from tierscale.adapters.kubernetes import rbac as adapter_rbac

Binding = Literal["clusterScoped", "tierNamespaces", "operatorNamespace", "peeringNamespaced"]
BINDINGS: Final[tuple[Binding, ...]] = (
    "clusterScoped",
    "tierNamespaces",
    "operatorNamespace",
    "peeringNamespaced",
)

CLUSTER_SCOPED_RESOURCES: Final = frozenset({"nodes", "clusterkopfpeerings"})


@dataclass(frozen=True, slots=True)
class ChartRule:
    api_group: str
    resource: str
    verbs: tuple[str, ...]
    binding: Binding
    why: tuple[str, ...]
    """One line per source that needs it (`adapter: ...`, `kopf: ...`)."""
    unexercised: dict[str, str] = field(default_factory=dict)
    """verb -> why the e2e suite does not exercise it (the audit test accepts these)."""


@dataclass(frozen=True, slots=True)
class KopfRule:
    api_group: str
    resource: str
    verbs: tuple[str, ...]
    binding: Binding
    why: str


KOPF_RULES: Final[tuple[KopfRule, ...]] = (
    KopfRule(
        "tierscale.dev",
        "slotiers",
        ("list", "watch", "patch"),
        "tierNamespaces",
        "watch SLOTiers (index and timers); add and remove its finalizer and progress",
    ),
    KopfRule(
        "apps",
        "deployments",
        ("list", "watch"),
        "tierNamespaces",
        "index of ready replicas (when a pool's newest replica became Ready)",
    ),
    KopfRule(
        "kopf.dev",
        "clusterkopfpeerings",
        ("list", "watch", "create", "patch"),
        "clusterScoped",
        "peering of replicas watching every namespace: exactly one acts (the operator "
        "creates the peering object at start)",
    ),
    KopfRule(
        "kopf.dev",
        "kopfpeerings",
        ("list", "watch", "create", "patch"),
        "peeringNamespaced",
        "peering of replicas watching listed namespaces (settings.namespaces); the operator "
        "creates the peering objects at start",
    ),
)

_CLUSTER_WIDE = (
    "cluster-wide peering, used when settings.namespaces is empty; the e2e operators each "
    "watch their own test namespace and peer there (kopfpeerings, the same verbs)"
)
UNEXERCISED: Final[dict[tuple[str, str, str], str]] = {
    ("kopf.dev", "clusterkopfpeerings", verb): _CLUSTER_WIDE
    for verb in ("list", "watch", "create", "patch")
}
"""(api group, resource, verb) -> why no e2e test makes that request (kept short; the
audit test fails on any other unused grant)."""

_VERB_ORDER: Final = ("get", "list", "watch", "create", "update", "patch", "delete")


def _binding_of(rule: adapter_rbac.Rule) -> Binding:
    if rule.resource in CLUSTER_SCOPED_RESOURCES:
        return "clusterScoped"
    return "operatorNamespace" if rule.scope == "operator-namespace" else "tierNamespaces"


def rules() -> list[ChartRule]:
    """Every rule, (group, resource) merged over the adapter and kopf, in a stable order."""
    merged: dict[tuple[str, str, Binding], tuple[set[str], list[str]]] = {}
    for a in adapter_rbac.RULES:
        key = (a.api_group, a.resource, _binding_of(a))
        verbs, why = merged.setdefault(key, (set(), []))
        verbs.update(a.verbs)
        why.append(f"adapter: {a.why}")
    for k in KOPF_RULES:
        key = (k.api_group, k.resource, k.binding)
        verbs, why = merged.setdefault(key, (set(), []))
        verbs.update(k.verbs)
        why.append(f"kopf: {k.why}")
    out = []
    for (group, resource, binding), (verbs, why) in merged.items():
        ordered = tuple(sorted(verbs, key=_verb_rank))
        unexercised = {
            verb: UNEXERCISED[(group, resource, verb)]
            for verb in ordered
            if (group, resource, verb) in UNEXERCISED
        }
        out.append(ChartRule(group, resource, ordered, binding, tuple(why), unexercised))
    return sorted(out, key=lambda r: (BINDINGS.index(r.binding), r.api_group, r.resource))


def _verb_rank(verb: str) -> tuple[int, str]:
    return (_VERB_ORDER.index(verb) if verb in _VERB_ORDER else len(_VERB_ORDER), verb)


def document() -> dict[str, Any]:
    """`files/rbac.yaml`: binding -> PolicyRules, each with `why` (the templates drop it)."""
    doc: dict[str, Any] = {b: [] for b in BINDINGS}
    for r in rules():
        entry: dict[str, Any] = {
            "apiGroups": [r.api_group],
            "resources": [r.resource],
            "verbs": list(r.verbs),
            "why": list(r.why),
        }
        if r.unexercised:
            entry["unexercised"] = dict(r.unexercised)
        doc[r.binding].append(entry)
    return doc


def render() -> str:
    header = (
        "# Generated by `tierscale chart` from tierscale.adapters.kubernetes.rbac.RULES and\n"
        "# tierscale.chart.rbac_rules.KOPF_RULES: do not edit by hand. The templates render\n"
        "# apiGroups/resources/verbs; `why` and `unexercised` document each grant\n"
        "# (docs/security.md).\n"
    )
    return header + yaml.safe_dump(document(), sort_keys=False, width=100)
