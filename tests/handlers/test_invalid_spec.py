"""An SLOTier whose spec does not parse gets InvalidSpec status and one Warning, once."""

from __future__ import annotations

from pathlib import Path

from tests.handlers.test_groups import _body
from tests.handlers.test_runtime import GOLD, SILVER, World
from tierscale.handlers import groups
from tierscale.handlers.operator import report_invalid


def test_a_bad_spec_is_reported_once_and_nothing_else_is_written(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    body = _body("broken", "2026-01-01T00:00:00Z", namespace="llm")
    body["spec"]["pool"]["maxReplicas"] = -1
    entry = groups.entry_from_body(body)
    report_invalid(world.runtime, entry, body)
    status = world.cluster.statuses["llm/broken"]
    invalid = next(c for c in status["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["status"] == "True" and "maxReplicas" in invalid["message"]
    assert [e.reason.value for e in world.cluster.events] == ["InvalidSpec"]
    report_invalid(world.runtime, entry, {**body, "status": status})
    assert len(world.cluster.events) == 1, "the same problem is not reported twice"
    assert world.cluster.scale_calls == []
