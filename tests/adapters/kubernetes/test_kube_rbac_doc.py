"""The RBAC table in docs/design.md is the adapter's `rbac.RULES`, row for row."""

from __future__ import annotations

from pathlib import Path

from tierscale.adapters.kubernetes.rbac import RULES, policy_rules

DESIGN = Path(__file__).resolve().parents[3] / "docs" / "design.md"


def _doc_rows() -> set[tuple[str, str, tuple[str, ...]]]:
    text = DESIGN.read_text()
    section = text.split("### RBAC", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("API group", "---"):
            continue
        group = "" if cells[0] == '""' else cells[0]
        rows.add((group, cells[1], tuple(v.strip() for v in cells[2].split(","))))
    return rows


def test_the_documented_rbac_is_the_code() -> None:
    assert _doc_rows() == {(r.api_group, r.resource, r.verbs) for r in RULES}


def test_policy_rules_split_by_scope() -> None:
    namespaced = policy_rules("operator-namespace")
    assert namespaced == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]}
    ]
    assert len(policy_rules("cluster")) == len(RULES) - 1
