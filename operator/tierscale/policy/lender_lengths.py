"""A lender's own request lengths: not learned from a window that holds other lengths borrowed.

vLLM labels nothing by tier, so a pool that serves spilled-in requests reports their
lengths mixed with its own tier's. Planning the lender's own traffic at the mixed lengths
counts the borrowed requests twice: once as the flow the allocation already sizes at the
borrower's own lengths, and again in the lender's own requests, which then look heavier
than they are (or lighter: then the lender takes on more than it holds). Where a batch tier's
3,900-token prompts spilled onto a 190-token chat pool, the chat pool's prompt mean read
950 and its p99 900 -> 4,400 tokens, its own capacity fell from 18.3 to 13-16 req/s per
replica, and under a 4-GPU budget it took the borrower's replica in every other decision
(34 scale events where the isolated plan made 2; the borrower 76.1 % against 85.6 %
isolated: gen-s20261130-017).

Un-mixing the window (the pool's completions beyond its own arrivals, at the borrowers'
lengths) was tried and is too noisy to plan on: the 60 s window mixes decisions with
different routes, and while load ramps completions lag arrivals, so the un-mixed prompt
mean of that chat pool swung between 46 and 710 tokens (true 190). So the lender keeps
the lengths it learned before (`borrows_other_lengths`) while the last decision routes
onto it requests of a tier whose lengths differ from its own, and learns again once none
are routed. Holding for every borrower froze estimates from a pool's first windows while
it borrowed requests of its own lengths (S2, seed 0: the 30 ms tier 98.3 -> 95.1 %),
where mixing double-counts nothing. (That version met gen-s7-019, a 5-tier, 6-GPU crunch
whose outcome follows small events; this one, like holding for heavier borrowers only,
leaves its batch-4 at 76.1 %, `isolated` 75.4 %: docs/planner.md step 1.)
A pool that has borrowed since its first decision has nothing else to go by and plans at
the mixed lengths, as before.
"""

from __future__ import annotations

from tierscale.domain.plans import PlannerState

OTHER_LENGTHS = 1.2
"""A borrower whose mean prompt or output is more than this factor above or below the
lender's has other lengths: mixed in, they move the lender's."""


def borrows_other_lengths(key: str, prior: PlannerState) -> bool:
    """Did the last decision route onto `key`'s pool requests of a tier whose mean prompt
    or output differs from the pool's own by more than `OTHER_LENGTHS` (as each was last
    learned)?"""
    own = prior.lengths_by_tier.get(key)
    if own is None:
        return False
    for borrower, last in prior.last_decisions.items():
        theirs = prior.lengths_by_tier.get(borrower)
        if borrower == key or theirs is None or last.weights_by_pool.get(key, 0.0) <= 0.0:
            continue
        if any(_differ(a, b) for a, b in ((theirs[0], own[0]), (theirs[1], own[1]))):
            return True
    return False


def _differ(theirs: float, own: float) -> bool:
    return theirs > OTHER_LENGTHS * own or own > OTHER_LENGTHS * theirs
