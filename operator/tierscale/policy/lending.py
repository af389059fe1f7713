"""What a pool may lend: no more than it has been seen to carry within its SLO.

Spillover puts a looser tier's requests on a tighter pool's spare capacity, and the
spare is what the pool's model says one replica carries beyond the pool's own load. The
model is validated only at the loads the pool has run at; beyond them it extrapolates,
and a wrong model (an engine batch limit the planner does not know, slower steps) then
overloads the lender with borrowed requests: every tier below what it would get
isolated (gen-s20261130-008, a flash crowd: the batch tier spilled 7.8 req/s onto a
standard pool whose model said 17.8 req/s per replica; it had never carried more than
~3, and its p99 TTFT went from 4.8 to 37 s).

So every pool keeps the per-replica load it was last seen carrying within its SLO
(`proven_after`), and lends at most what takes its load to `PlannerConfig.lend_beyond_proven`
times that (`borrowed_bound_rps`). A lender that carries what it borrowed within its SLO
proves the higher load, and its bound grows by that factor per window: borrowing ramps
up as it is shown safe instead of at once. A pool never judged yet (a fresh planner) is
bounded by its model alone.
"""

from __future__ import annotations

import math

from tierscale.policy.config import PlannerConfig


def proven_after(
    proven_rps: float | None,
    elapsed_s: float,
    load_rps: float | None,
    seen: bool | None,
    roomy: bool,
    cfg: PlannerConfig,
) -> float | None:
    """The per-replica load the pool is known to carry within its SLO, after this window.

    `load_rps` is the window's load per Ready replica (the rate finishing on the pool,
    borrowed requests included), None where the window proves nothing (replicas loading
    or draining, a new replica's first minute); `seen` is the breach verdict on it
    (`breach.verdict`); `roomy` says its p99 TTFT was within `lend_headroom_frac` of the
    SLO. A window that met the SLO with that room proves its load. One that breached it,
    or met it with less room (the pool near its limit: the flash crowd above met a 5 s
    SLO at 4.6 s), caps the known load at its load over the lending factor, so the pool
    lends nothing that would take it beyond that load. The known load
    halves every `breach_memory_half_life_s` (none: kept as is). None: never judged.
    """
    decayed = _decayed(proven_rps, elapsed_s, cfg)
    if seen is None or load_rps is None:
        return decayed
    if seen or not roomy:
        capped = load_rps / (cfg.lend_beyond_proven or 1.0)
        return capped if decayed is None else min(decayed, capped)
    return load_rps if decayed is None else max(decayed, load_rps)


def borrowed_bound_rps(
    proven_rps: float | None, ready_replicas: int, own_rate_rps: float, cfg: PlannerConfig
) -> float | None:
    """The most other tiers' requests/s the pool may carry now; None: its model alone.

    `lend_beyond_proven` times the known per-replica load, over the Ready replicas,
    less the pool's own tier's rate."""
    if cfg.lend_beyond_proven is None or proven_rps is None:
        return None
    room_rps = cfg.lend_beyond_proven * proven_rps * max(ready_replicas, 0)
    return max(room_rps - max(own_rate_rps, 0.0), 0.0)


def _decayed(proven_rps: float | None, elapsed_s: float, cfg: PlannerConfig) -> float | None:
    if proven_rps is None or cfg.breach_memory_half_life_s is None:
        return proven_rps
    halvings = max(elapsed_s, 0.0) / cfg.breach_memory_half_life_s
    return proven_rps * math.pow(0.5, halvings)
