"""Turn a raw replica recommendation into a safe change of the Deployment.

Scale up at once (bounded per decision), scale down only when every recommendation over
the stabilisation window agrees (the HPA's rule, which users know), bounded per decision,
and never below what in-flight work needs or the tier's minimum. The recommendation
history is explicit state returned to the caller, never hidden in the module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Rule = Literal["raw", "step_up", "window", "step_down", "load", "floor"]
"""Which rule set the stabilised replicas: the raw recommendation itself, the scale-up step
limit, the scale-down window, the scale-down step limit, the current load (the replicas
left must hold the SLO at the load the pool serves now), or the floor (in-flight work)."""


@dataclass(frozen=True, slots=True)
class Stabilized:
    replicas: int
    history: tuple[tuple[float, int], ...]
    """(time_s, raw recommendation) kept for the next decision."""
    held_by_window: bool
    """True when a lower recommendation was not applied because of the window."""
    limited_by_rate: bool
    """True when the per-decision change limit cut the step."""
    rule: Rule = "raw"
    """The rule that set `replicas` (the first, in the order of `Rule`, when several agree)."""
    window_covered: bool = True
    """False while the history does not yet cover a whole window (a fresh start holds)."""


def stabilize(
    raw_replicas: int,
    current_replicas: int,
    history: Sequence[tuple[float, int]],
    now_s: float,
    window_s: float,
    max_up: int,
    max_down: int,
    floor_replicas: int,
    load_floor_replicas: int = 0,
) -> Stabilized:
    """Apply the scale-down window and change-rate limits to `raw_replicas`.

    A scale-down never goes below `floor_replicas` (in-flight work) nor below
    `load_floor_replicas` (what the load the pool serves now needs at the SLO); neither
    ever scales up: both are capped at the replicas the pool has.
    """
    in_window = tuple((t, r) for t, r in history if now_s - t < window_s) + ((now_s, raw_replicas),)
    older = tuple((t, r) for t, r in history if now_s - t >= window_s)
    # One entry older than the window proves the window is covered; a fresh start holds.
    kept = older[-1:] + in_window
    if raw_replicas >= current_replicas:
        target = min(raw_replicas, current_replicas + max(max_up, 1))
        rule: Rule = "step_up" if target < raw_replicas else "raw"
        return Stabilized(target, kept, False, target < raw_replicas, rule, bool(older))
    window_max = max(r for _, r in in_window)
    covered = bool(older)
    allowed = max(window_max, raw_replicas) if covered else current_replicas
    allowed = min(allowed, current_replicas)
    step_floor = current_replicas - max(max_down, 1)
    load_floor = min(load_floor_replicas, current_replicas)
    target = max(allowed, step_floor, floor_replicas, load_floor, raw_replicas)
    held = target > raw_replicas and allowed > raw_replicas
    rule = _down_rule(target, raw_replicas, allowed, step_floor, floor_replicas)
    return Stabilized(target, kept, held, target > allowed, rule, covered)


def _down_rule(target: int, raw: int, allowed: int, step_floor: int, floor: int) -> Rule:
    """Which of the scale-down terms set `target` (the first when several agree)."""
    if target == raw:
        return "raw"
    if target == allowed:
        return "window"
    if target == step_floor:
        return "step_down"
    if target == floor:
        return "floor"
    return "load"


def inflight_floor(running: float | None, waiting: float | None, max_num_seqs: int) -> int:
    """Replicas the requests already in the pool need, so a scale-down aborts none of them."""
    inflight = (running or 0.0) + (waiting or 0.0)
    if inflight <= 0.0:
        return 0
    return math.ceil(inflight / max(max_num_seqs, 1))
