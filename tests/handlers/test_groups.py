"""Model groups: oldest tier first, exactly one leader, a bad spec is its own group."""

from __future__ import annotations

from typing import Any

from tierscale.handlers import groups


def _body(name: str, created: str, model: str = "llama", namespace: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "tierscale.dev/v1alpha1",
        "kind": "SLOTier",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": {
            "model": model,
            "slo": {"ttft": "500ms", "tpot": "50ms"},
            "pool": {"deployment": f"vllm-{name}", "maxReplicas": 4},
        },
    }


def test_tiers_are_planned_oldest_first_and_the_oldest_leads() -> None:
    entries = [
        groups.entry_from_body(_body("silver", "2026-01-02T00:00:00Z")),
        groups.entry_from_body(_body("gold", "2026-01-01T00:00:00Z", namespace="b")),
        groups.entry_from_body(_body("bronze", "2026-01-02T00:00:00Z", namespace="0")),
    ]
    assert [t.key for t in groups.tiers_of(entries)] == ["b/gold", "0/bronze", "a/silver"]
    assert groups.leader(entries) == "b/gold"
    assert {e.group for e in entries} == {"llama"}


def test_an_empty_group_has_no_leader() -> None:
    assert groups.leader([]) is None


def test_a_spec_that_does_not_parse_is_its_own_group_with_its_problem() -> None:
    body = _body("gold", "2026-01-01T00:00:00Z")
    body["spec"]["pool"]["maxReplicas"] = -1
    entry = groups.entry_from_body(body)
    assert entry.tier is None
    assert entry.group == "invalid:a/gold"
    assert entry.problem is not None and "spec.pool.maxReplicas" in entry.problem
    assert groups.tiers_of([entry]) == []
