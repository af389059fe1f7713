"""Scale up at once, scale down only after the window, never below floors."""

from __future__ import annotations

from tierscale.policy.stabilize import inflight_floor, stabilize


def _run(
    raw: int,
    current: int,
    history: list[tuple[float, int]],
    now_s: float = 1000.0,
    floor: int = 0,
    max_up: int = 4,
    max_down: int = 1,
):  # type: ignore[no-untyped-def]
    return stabilize(raw, current, history, now_s, 300.0, max_up, max_down, floor)


def test_scale_up_is_immediate_but_bounded_per_decision() -> None:
    assert _run(raw=3, current=2, history=[]).replicas == 3
    limited = _run(raw=10, current=2, history=[])
    assert limited.replicas == 6 and limited.limited_by_rate


def test_scale_down_waits_until_the_window_is_covered() -> None:
    assert _run(raw=1, current=4, history=[(900.0, 1)]).replicas == 4
    # Covered, and every recommendation in the window says 1: step down by max_down.
    result = _run(raw=1, current=4, history=[(600.0, 1), (800.0, 1), (950.0, 1)])
    assert result.replicas == 3 and result.limited_by_rate


def test_scale_down_respects_the_highest_recommendation_in_the_window() -> None:
    result = _run(raw=1, current=4, history=[(600.0, 1), (800.0, 3)], max_down=4)
    assert result.replicas == 3 and result.held_by_window


def test_scale_down_never_goes_below_the_floor() -> None:
    assert _run(raw=0, current=3, history=[(600.0, 0)], floor=2, max_down=5).replicas == 2


def test_history_keeps_one_entry_older_than_the_window() -> None:
    result = _run(raw=2, current=2, history=[(100.0, 5), (600.0, 4), (900.0, 3)])
    assert result.history == ((600.0, 4), (900.0, 3), (1000.0, 2))


def test_inflight_floor_counts_running_and_waiting_requests() -> None:
    assert inflight_floor(None, None, 256) == 0
    assert inflight_floor(300.0, 20.0, 256) == 2


def test_the_rule_that_set_the_replicas_is_named() -> None:
    covered = [(600.0, 1), (800.0, 1), (950.0, 1)]
    assert _run(raw=3, current=2, history=[]).rule == "raw"
    assert _run(raw=10, current=2, history=[]).rule == "step_up"
    fresh = _run(raw=1, current=4, history=[(900.0, 1)])
    assert (fresh.rule, fresh.window_covered) == ("window", False)
    assert _run(raw=1, current=4, history=[(600.0, 1), (800.0, 3)], max_down=4).rule == "window"
    assert _run(raw=1, current=4, history=covered).rule == "step_down"
    assert _run(raw=0, current=3, history=[(600.0, 0)], floor=2, max_down=5).rule == "floor"
    assert _run(raw=1, current=4, history=covered, max_down=5).rule == "raw"


def test_a_scale_down_keeps_what_the_current_load_needs_and_never_adds() -> None:
    covered = [(600.0, 1), (800.0, 1), (950.0, 1)]
    kept = stabilize(1, 4, covered, 1000.0, 300.0, 4, 4, 0, load_floor_replicas=3)
    assert (kept.replicas, kept.rule) == (3, "load")
    # The load floor caps at the replicas the pool has: it never scales up by itself.
    capped = stabilize(1, 2, covered, 1000.0, 300.0, 4, 4, 0, load_floor_replicas=5)
    assert (capped.replicas, capped.rule) == (2, "load")
    # Scale-ups are not touched by it.
    assert stabilize(3, 2, [], 1000.0, 300.0, 4, 4, 0, load_floor_replicas=1).replicas == 3
    # In-flight work wins where it asks for more, and is named.
    both = stabilize(1, 4, covered, 1000.0, 300.0, 4, 4, 3, load_floor_replicas=2)
    assert (both.replicas, both.rule) == (3, "floor")
