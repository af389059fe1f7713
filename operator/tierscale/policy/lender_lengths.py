"""A lender's own request lengths: not learned from a window that holds borrowed requests.

vLLM labels nothing by tier, so a pool that serves spilled-in requests reports their
lengths mixed with its own tier's. Planning the lender's own traffic at the mixed lengths
counts the borrowed requests twice: once as the flow the allocation already sizes at the
borrower's own lengths, and again as heavier own requests. Where a batch tier's
3,900-token prompts spilled onto a 190-token chat pool, the chat pool's prompt mean read
950 and its p99 900 -> 4,400 tokens, its own capacity fell from 18.3 to 13-16 req/s per
replica, and under a 4-GPU budget it took the borrower's replica in every other decision
(34 scale events where the isolated plan made 2; the borrower 76.1 % against 85.6 %
isolated: gen-s20261130-017).

Un-mixing the window (the pool's completions beyond its own arrivals, at the borrowers'
lengths) was tried and is too noisy to plan on: the 60 s window mixes decisions with
different routes, and while load ramps completions lag arrivals, so the un-mixed prompt
mean of that chat pool swung between 46 and 710 tokens (true 190). So the lender keeps
the lengths it learned before it borrowed (`borrowed_in_window`) and learns again once no
decision routes other tiers' requests onto it. A pool that has borrowed since its first decision
has nothing else to go by and plans at the mixed lengths, as before.
"""

from __future__ import annotations

from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import PlannerState


def borrowed_in_window(obs: TierObservation, prior: PlannerState) -> bool:
    """Did the last decision route, or plan, other tiers' requests onto this pool?"""
    last = prior.last_decisions.get(obs.tier_key)
    return last is not None and (last.spill_in_rps > 0.0 or last.planned_spill_in_rps > 0.0)
