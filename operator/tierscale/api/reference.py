"""The field tables of docs/crd-reference.md, generated from the CRD schema.

Generated from the same structural schema the API server enforces, so the documented
types, defaults and ranges cannot drift from what is validated (a test compares them).
Regenerate with `python -m tierscale.api.reference docs/crd-reference.md`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from tierscale.api.crd import openapi_schema

BEGIN: Final = "<!-- BEGIN GENERATED {name} (tierscale.api.reference) -->"
END: Final = "<!-- END GENERATED {name} -->"
SECTIONS: Final = ("spec", "status")


def field_table(section: str) -> str:
    """A Markdown table of every field under `section` ("spec" or "status")."""
    node = openapi_schema()["properties"][section]
    rows = [
        "| Field | Type | Required | Default | Allowed values | Meaning |",
        "|---|---|---|---|---|---|",
    ]
    rows += [_row(path, child, required) for path, child, required in _walk(section, node)]
    return "\n".join(rows)


def render_sections(text: str) -> str:
    """`text` with every generated section replaced by the current table."""
    for section in SECTIONS:
        begin, end = BEGIN.format(name=section), END.format(name=section)
        head, found, rest = text.partition(begin)
        if not found:
            raise ValueError(f"marker {begin!r} not found")
        _, found, tail = rest.partition(end)
        if not found:
            raise ValueError(f"marker {end!r} not found")
        text = f"{head}{begin}\n{field_table(section)}\n{end}{tail}"
    return text


def _walk(path: str, node: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    required = set(node.get("required", ()))
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}"
        yield child_path, child, name in required
        if child.get("type") == "object":
            yield from _walk(child_path, child)
        elif child.get("type") == "array" and child["items"].get("type") == "object":
            yield from _walk(f"{child_path}[]", child["items"])


def _row(path: str, node: Mapping[str, Any], required: bool) -> str:
    kind = str(node["type"])
    if kind == "array":
        kind = f"array of {node['items']['type']}"
    if node.get("format"):
        kind += f" ({node['format']})"
    default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
    cells = [
        f"`{path}`",
        kind,
        "yes" if required else "",
        default,
        _allowed(node),
        str(node.get("description", "")).replace("|", "\\|"),
    ]
    return "| " + " | ".join(cells) + " |"


def _allowed(node: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if "enum" in node:
        parts.append(", ".join(f"`{value}`" for value in node["enum"]))
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None:
        parts.append(f"{'>' if node.get('exclusiveMinimum') else '>='} {_num(low)}")
    if high is not None:
        parts.append(f"{'<' if node.get('exclusiveMaximum') else '<='} {_num(high)}")
    if "minLength" in node or "maxLength" in node:
        parts.append(f"length {node.get('minLength', 0)}..{node.get('maxLength', 'any')}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for rule in node.get("x-kubernetes-validations", ()):
        parts.append(f"CEL `{rule['rule']}`")
    return "; ".join(parts).replace("|", "\\|")


def _num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tierscale.api.reference docs/crd-reference.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(render_sections(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
