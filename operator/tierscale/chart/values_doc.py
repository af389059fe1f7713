"""values.yaml -> its JSON schema (outside `settings`) and the README's values table.

helm-docs style: a comment line `# -- text` (continued by `# more`) documents the key on
the next line. The schema of each key is inferred from its default, with `OVERRIDES` for
keys whose default does not say enough (an enum, `auto`-or-boolean, a free-form map).
Objects of the chart's own sections are closed (`additionalProperties: false`), so a
misspelt key fails `helm install` instead of being ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

import yaml

FREE_FORM: Final = frozenset(
    {
        "resources",
        "nodeSelector",
        "affinity",
        "podAnnotations",
        "podLabels",
        "serviceAccount.annotations",
        "networkPolicy.metricsFromNamespaceSelector",
        "metrics.serviceMonitor.labels",
        "prometheusRules.labels",
        "dashboards.annotations",
    }
)
"""Maps whose keys are the user's (Kubernetes objects, labels, annotations)."""

AUTO_OR_BOOL: Final = {"anyOf": [{"type": "boolean"}, {"enum": ["auto"]}]}

OVERRIDES: Final[dict[str, dict[str, Any]]] = {
    "replicaCount": {"type": "integer", "minimum": 0, "maximum": 2},
    "image.pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "metrics.serviceMonitor.enabled": AUTO_OR_BOOL,
    "prometheusRules.kind": {"enum": ["auto", "PrometheusRule", "ConfigMap"]},
    "prometheusRules.interval": {"type": "string", "pattern": r"^$|^[0-9]+(ms|s|m|h)$"},
    "metrics.serviceMonitor.interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
    "probes.livenessPeriodS": {"type": "integer", "minimum": 1},
    "probes.readinessPeriodS": {"type": "integer", "minimum": 1},
    "podDisruptionBudget.minAvailable": {"type": "integer", "minimum": 0},
    "imagePullSecrets": {"type": "array", "items": {"type": "object"}},
    "tolerations": {"type": "array", "items": {"type": "object"}},
    "extraEnv": {"type": "array", "items": {"type": "object"}},
    "networkPolicy.egress": {"type": "array", "items": {"type": "object"}},
}


@dataclass(frozen=True, slots=True)
class Documented:
    key: str
    """Dotted path."""
    value: Any
    description: str


_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):")


def documented(text: str) -> list[Documented]:
    """Every key with a `# --` comment, in file order, with its default."""
    data = yaml.safe_load(text) or {}
    out: list[Documented] = []
    path: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and pending is not None:
            pending.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if match is None:
            if stripped and not stripped.startswith("-"):
                pending = None
            continue
        indent = len(match["indent"])
        while path and path[-1][0] >= indent:
            path.pop()
        path.append((indent, match["key"]))
        if pending is not None:
            dotted = ".".join(k for _, k in path)
            out.append(Documented(dotted, _lookup(data, dotted), " ".join(pending)))
            pending = None
    return out


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def infer_schema(value: Any, path: str = "") -> dict[str, Any]:
    if path in OVERRIDES:
        return dict(OVERRIDES[path])
    if path in FREE_FORM:
        return {"type": "object"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, dict):
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: infer_schema(v, f"{path}.{k}" if path else k) for k, v in value.items()
            },
        }
    return {}


def schema(values_text: str, settings_schema: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load(values_text)
    doc = infer_schema({k: v for k, v in data.items() if k != "settings"})
    docs = {d.key: d.description for d in documented(values_text)}
    _describe(doc, "", docs)
    doc["properties"]["settings"] = settings_schema
    return {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "tierscale chart values",
        **doc,
    }


def _describe(node: dict[str, Any], path: str, docs: dict[str, str]) -> None:
    if path in docs:
        node["description"] = docs[path]
    for key, child in node.get("properties", {}).items():
        _describe(child, f"{path}.{key}" if path else key, docs)


def values_table(values_text: str) -> str:
    """The README's table: key, type, default, description."""
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for d in documented(values_text):
        rows.append(
            f"| `{d.key}` | {_type(d.value)} | `{_default(d.value)}` | "
            f"{d.description.replace('|', '&#124;')} |"
        )
    return "\n".join(rows) + "\n"


def _type(value: Any) -> str:
    if value is None:
        return "string or null"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}[
        type(value)
    ]


def _default(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": ")).replace("|", "&#124;")
