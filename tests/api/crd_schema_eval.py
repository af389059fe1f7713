"""A Python model of how kube-apiserver admits a custom resource against our CRD schema.

Mirrors the order the API server uses: kubectl's YAML->JSON number conversion, pruning of
nulls on non-nullable fields, defaulting, then OpenAPI validation, strict unknown-field
checks and CEL rules. Error texts follow apiextensions-apiserver's formats, so the
`apiserver` substrings of examples/slotiers/invalid/expected.yaml can be checked offline.
CEL rules are evaluated by the Python twins in `CEL_RULES`; an unknown rule fails loudly.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from tierscale.api.durations import parse_duration

CEL_RULES: dict[str, Callable[[Any], bool]] = {
    "self.minReplicas <= self.maxReplicas": lambda v: v["minReplicas"] <= v["maxReplicas"],
    "duration(self) > duration('0s')": lambda v: parse_duration(v) > 0.0,
}

_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


class NotEncodable(ValueError):
    """kubectl cannot send this document at all (e.g. NaN has no JSON form)."""


def admit(schema: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    """Errors the API server would report for `body` (an empty list means accepted)."""
    obj = _as_sent_by_kubectl(copy.deepcopy(dict(body)))
    obj = prune_nulls(schema, obj)
    obj = apply_defaults(schema, obj)
    return validate(schema, obj, "")


def _as_sent_by_kubectl(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotEncodable(f"{value} cannot be encoded as JSON")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _as_sent_by_kubectl(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_sent_by_kubectl(v) for v in value]
    return value


def prune_nulls(node: Mapping[str, Any], value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    props = node.get("properties", {})
    out = {}
    for key, child in value.items():
        sub = props.get(key)
        if child is None and sub is not None and not sub.get("nullable", False):
            continue
        out[key] = prune_nulls(sub, child) if sub is not None else child
    return out


def apply_defaults(node: Mapping[str, Any], value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, sub in node.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = apply_defaults(sub, out[key])
    return out


def validate(node: Mapping[str, Any], value: Any, path: str) -> list[str]:
    if value is None:
        if node.get("nullable", False):
            return []
        return [f'{path}: Invalid value: "null": {path} in body must be of type {node["type"]}']
    kind = node["type"]
    if not _TYPES[kind](value):
        shown = _type_name(value)
        return [
            f'{path}: Invalid value: "{shown}": {path} in body must be of type {kind}: "{shown}"'
        ]
    errors = _scalar_errors(node, value, path)
    if kind == "object":
        errors += _object_errors(node, value, path)
    if kind == "array":
        for index, item in enumerate(value):
            errors += validate(node["items"], item, f"{path}[{index}]")
    if not errors:
        for rule in node.get("x-kubernetes-validations", ()):
            if not CEL_RULES[rule["rule"]](value):
                # apiextensions-apiserver (1.3x) omits the value of objects and arrays.
                shown = "" if kind in ("object", "array") else f"{json.dumps(value)}: "
                errors.append(f"{path}: Invalid value: {shown}{rule['message']}")
    return errors


def _object_errors(node: Mapping[str, Any], value: dict[str, Any], path: str) -> list[str]:
    props = node.get("properties")
    errors: list[str] = []
    for key in node.get("required", ()):
        if key not in value:
            errors.append(f"{_join(path, key)}: Required value")
    if props is None:
        return errors
    for key, child in value.items():
        if key in props:
            errors += validate(props[key], child, _join(path, key))
        elif not node.get("x-kubernetes-preserve-unknown-fields", False):
            errors.append(f'unknown field "{_join(path, key)}"')
    return errors


def _scalar_errors(node: Mapping[str, Any], value: Any, path: str) -> list[str]:
    errors: list[str] = []
    shown = json.dumps(value) if not isinstance(value, dict | list) else '"object"'
    prefix = f"{path}: Invalid value: {shown}: {path} in body"
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None:
        if node.get("exclusiveMinimum") and not value > low:
            errors.append(f"{prefix} should be greater than {_num(low)}")
        elif not node.get("exclusiveMinimum") and not value >= low:
            errors.append(f"{prefix} should be greater than or equal to {_num(low)}")
    if high is not None:
        if node.get("exclusiveMaximum") and not value < high:
            errors.append(f"{prefix} should be less than {_num(high)}")
        elif not node.get("exclusiveMaximum") and not value <= high:
            errors.append(f"{prefix} should be less than or equal to {_num(high)}")
    if isinstance(value, str):
        if "maxLength" in node and len(value) > node["maxLength"]:
            errors.append(f"{path}: Too long: may not be more than {node['maxLength']} bytes")
        if "minLength" in node and len(value) < node["minLength"]:
            errors.append(f"{prefix} should be at least {node['minLength']} chars long")
        # Go's RE2 `$` is end-of-text; Python's also matches before a final newline.
        if "pattern" in node and not re.search(node["pattern"].replace("$", r"\Z"), value):
            errors.append(f"{prefix} should match '{node['pattern']}'")
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: Unsupported value: {shown}")
    return errors


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
