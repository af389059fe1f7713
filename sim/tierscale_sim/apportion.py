"""Share a GPU budget between tiers the way someone with hindsight would size a fixed fleet.

The static baseline and the oracle both size each tier as ceil(need) replicas; when that
exceeds the budget, cutting the largest tier (or scaling integer counts) starves one tier
for rounding the others could absorb. Sharing by the fractional need is what a person
sizing the fleet by hand would do. Counts are replicas of one GPU each (every shipped
scenario); a budget over multi-GPU replicas would need the GPUs per replica here.
"""

from __future__ import annotations

from collections.abc import Mapping


def share_budget(
    counts: dict[str, int],
    need_by_tier: Mapping[str, float],
    floor_by_tier: Mapping[str, int],
    budget: int | None,
) -> dict[str, int]:
    """Share the GPU budget by the replicas each tier needs (largest remainders): a
    hand-provisioned fleet cannot exceed the GPUs there are, and whoever sizes it with
    hindsight rounds down the tiers that need the fraction of a replica least."""
    if budget is None or sum(counts.values()) <= budget:
        return counts
    out = {k: max(floor_by_tier[k], min(counts[k], int(need_by_tier[k]))) for k in counts}
    by_remainder = sorted(counts, key=lambda k: (-(need_by_tier[k] - int(need_by_tier[k])), k))
    for k in by_remainder:
        if sum(out.values()) >= budget:
            break
        if out[k] < counts[k]:
            out[k] += 1
    while sum(out.values()) > budget:
        k = max(out, key=lambda k: (out[k] - floor_by_tier[k], k))
        if out[k] <= floor_by_tier[k]:
            break
        out[k] -= 1
    return out
