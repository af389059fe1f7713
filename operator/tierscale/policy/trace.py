"""What set each live tier's replicas, recorded step by step as the pipeline runs.

The explanation (`explain.py`) reads this record, never guesses afterwards: the need, the
allocation and the GPU cap that was full there, what the breach guard asked for, which
stabiliser rule held or cut, and the GPU cap that trimmed what the stabiliser kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tierscale.policy import allocation, stabilize


@dataclass(frozen=True, slots=True)
class CapUse:
    """One GPU cap and the GPUs planned inside it."""

    gpus: int
    """The cap (GPUs)."""
    used_gpus: int
    """GPUs planned over the cap's pools at that step."""
    model: str | None
    """Served model of a per-model cap; None for the cluster total."""


@dataclass(frozen=True, slots=True)
class Trace:
    """One live tier's replicas after each step, and what bound them there."""

    needed: int | None
    """Replicas of its own pool the forecast needs; None when no replica meets the SLO."""
    allocated: int
    """The exact allocation (budget, min/max, spillover)."""
    allocation_cap: CapUse | None
    """The cap with the least room left over this pool in the allocation."""
    allocation_feasible: bool
    """False when even the minimum replicas break a GPU cap."""
    guard_wish: int
    """What the breach guard asked for before min/maxReplicas (= allocated without one)."""
    guarded: int
    stabilized: stabilize.Stabilized
    """The stabiliser's result before min/maxReplicas."""
    stable: int
    """The stabiliser's result within min/maxReplicas."""
    desired: int
    fit_cap: CapUse | None
    """The cap that trimmed `stable` to `desired` (None when nothing was trimmed)."""
    spill_withdrawn: tuple[tuple[str, str], ...] = ()
    """(lender pool, why) for each pool the previous decision routed some of this tier's
    traffic onto and that lends nothing now (`capacities.lender_trouble`)."""
    yielded_to: tuple[str, ...] = ()
    """Tiers of at least this one's priority, observed breaching their SLO, holding replicas
    above their allocation, which this tier's scale-up gave way to inside the budget
    (`planner._fit_budget`)."""


def needed_replicas(rate_rps: float, capacity_rps: float) -> int | None:
    """Replicas serving `rate_rps` at `capacity_rps` each, with the allocation's tolerances."""
    if rate_rps < allocation.NEGLIGIBLE_RATE_RPS:
        return 0
    if capacity_rps <= 0.0:
        return None
    return math.ceil(rate_rps / capacity_rps - 1e-9)


def tightest_cap(
    pool: str,
    caps: Sequence[allocation.GpuCap],
    replicas_by_pool: Mapping[str, int],
    gpus_by_pool: Mapping[str, int],
) -> CapUse | None:
    """The cap over `pool` with the least room left for `replicas_by_pool` (None if none)."""
    best: CapUse | None = None
    for cap in caps:
        if pool not in cap.pools:
            continue
        used = sum(gpus_by_pool[p] * replicas_by_pool.get(p, 0) for p in cap.pools)
        use = CapUse(cap.gpus, used, cap.model)
        if best is None or use.gpus - use.used_gpus < best.gpus - best.used_gpus:
            best = use
    return best
