"""Which pods a scale-down removes, and which annotations change."""

from __future__ import annotations

from typing import Any

import pytest

from tierscale.adapters.kubernetes.names import DELETION_COST_ANNOTATION, DELETION_COST_REMOVE
from tierscale.adapters.kubernetes.pod_removal import (
    PodInfo,
    choose_removals,
    cost_patches,
    live_pods,
    parse_time,
)


def pod(
    name: str, *, ready: bool = True, created_s: float = 0.0, cost: str | None = None
) -> PodInfo:
    return PodInfo(name, ready, created_s, cost)


def test_least_inflight_ready_pods_go_first() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    inflight = {"a": 7.0, "b": 0.0, "c": 3.0, "d": 12.0}
    assert choose_removals(pods, 2, inflight) == {"b", "c"}


def test_not_ready_pods_go_before_any_ready_one() -> None:
    pods = [pod("idle"), pod("loading", ready=False)]
    assert choose_removals(pods, 1, {"idle": 0.0, "loading": 0.0}) == {"loading"}


def test_unknown_inflight_goes_last() -> None:
    pods = [pod("unseen"), pod("busy"), pod("nan")]
    inflight = {"busy": 40.0, "nan": float("nan")}
    assert choose_removals(pods, 1, inflight) == {"busy"}
    assert choose_removals(pods, 2, inflight) == {"busy", "nan"}


def test_ties_remove_the_newest_then_by_name() -> None:
    pods = [
        pod("old", created_s=1.0),
        pod("new", created_s=9.0),
        pod("mid-b", created_s=5.0),
        pod("mid-a", created_s=5.0),
    ]
    assert choose_removals(pods, 1, {}) == {"new"}
    assert choose_removals(pods, 2, {}) == {"new", "mid-a"}


def test_nothing_to_remove() -> None:
    assert choose_removals([pod("a")], 0, {}) == frozenset()
    assert choose_removals([pod("a")], -1, {}) == frozenset()
    assert choose_removals([], 2, {}) == frozenset()


def test_only_changed_annotations_are_patched() -> None:
    pods = [
        pod("go", cost=None),
        pod("stay-marked", cost=DELETION_COST_REMOVE),
        pod("already", cost=DELETION_COST_REMOVE),
        pod("plain"),
    ]
    assert cost_patches(pods, frozenset({"go", "already"})) == {
        "go": DELETION_COST_REMOVE,
        "stay-marked": None,
    }


def _pod_json(name: str, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "creationTimestamp": "2025-03-01T12:00:00Z",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "gold-5d4f8", "controller": True}],
    }
    metadata.update(extra.pop("metadata", {}))
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    status.update(extra.pop("status", {}))
    return {"metadata": metadata, "status": status}


def test_live_pods_of_the_deployment() -> None:
    pods = [
        _pod_json("gold-5d4f8-a", metadata={"annotations": {DELETION_COST_ANNOTATION: "-1000"}}),
        _pod_json("gold-5d4f8-b", status={"conditions": [{"type": "Ready", "status": "False"}]}),
        _pod_json("gold-5d4f8-c", metadata={"deletionTimestamp": "2025-03-01T12:01:00Z"}),
        _pod_json("gold-5d4f8-d", status={"phase": "Succeeded"}),
        _pod_json(
            "goldfish-x",
            metadata={
                "ownerReferences": [
                    {"kind": "ReplicaSet", "name": "goldfish-1", "controller": True}
                ]
            },
        ),
        _pod_json("bare", metadata={"ownerReferences": []}),
    ]
    got = live_pods(pods, "gold")
    assert [(p.name, p.ready, p.deletion_cost) for p in got] == [
        ("gold-5d4f8-a", True, "-1000"),
        ("gold-5d4f8-b", False, None),
    ]
    assert got[0].created_s > 0


@pytest.mark.parametrize("value", [None, "", "yesterday", 5])
def test_unparsable_times_are_none(value: object) -> None:
    assert parse_time(value) is None
