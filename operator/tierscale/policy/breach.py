"""What the planner learns from observed SLO breaches: the verdict and the model bias.

A breach is judged beyond sampling noise (`breached`); a counted breach grows a bias that
divides the pool's capacities, which decays while the pool keeps its SLO (`next_bias`).
A breach the last plan already predicted teaches nothing (`shortfall_planned`), nor does
the part of a window a new replica's first minute, a backlog the pool drains or a size the
planner had not chosen or the requests a pool borrowed explain (`holds_without`,
`backlog_share`, `inherited_size_share`, `borrowed_share`). The load a
pool breached at is remembered longer than the bias (`floor_after`, `decayed_floor`).
"""

from __future__ import annotations

import math

from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import TierDecision
from tierscale.domain.tiers import Tier
from tierscale.policy.config import PlannerConfig


def verdict(
    tier: Tier, obs: TierObservation, cfg: PlannerConfig, last: TierDecision | None = None
) -> bool | None:
    """Is the SLO broken beyond what sampling noise explains? None when nothing says.

    A 99th percentile over a one-minute window rests on a handful of requests, so a
    single slow request "breaks" it often; reacting to that ratchets replicas up for
    nothing. With attainment data, a breach needs the missed share to exceed what the
    target allows by a one-sided binomial margin; without it, the percentile latency
    must exceed the SLO by a margin. No traffic, or neither attainment nor a latency
    observed, is no verdict (None): the planner does not act on it, and the SLOMet
    condition, which shows this same verdict, is Unknown.

    Attainment read from histograms is linear inside the bucket that holds an SLO bound;
    where the TPOT buckets would also allow the SLO met (`unresolved_by_buckets`), a breach is
    proven only by the model's prediction in `last` lying below the bucket the percentile
    was seen in (`model_below_buckets`); otherwise nothing proves the model wrong and
    there is no verdict (`PlannerConfig.unproven_breach_needs_model_miss`).
    """
    if not obs.rate_rps:
        return None
    if obs.attainment_frac is not None:
        requests = obs.window_requests or obs.rate_rps * obs.window_s
        if requests <= 0:
            return None
        missed = 1.0 - obs.attainment_frac
        if not _missed_beyond_noise(missed, requests, tier, cfg):
            return False
        return None if unproven(tier, obs, cfg, last) else True
    limit = 1.0 + cfg.breach_quantile_margin
    ttft_bad = obs.ttft_s is not None and obs.ttft_s > tier.slo.ttft_s * limit
    tpot_bad = obs.tpot_s is not None and obs.tpot_s > tier.slo.tpot_s * limit
    if obs.ttft_s is None and obs.tpot_s is None:
        return None
    return ttft_bad or tpot_bad


def _missed_beyond_noise(
    missed_frac: float, requests: float, tier: Tier, cfg: PlannerConfig
) -> bool:
    return _beyond_noise(missed_frac, requests, tier, cfg) and (
        missed_frac * requests >= cfg.breach_min_misses
    )


def unproven(
    tier: Tier, obs: TierObservation, cfg: PlannerConfig, last: TierDecision | None
) -> bool:
    """Is the window's miss one the buckets leave unproven? The linear estimate inside
    vLLM's buckets misses the target beyond noise, the buckets also allow the SLO met
    (`unresolved_by_buckets`), and the model's last prediction does not lie below the
    bucket the percentile was seen in (`model_below_buckets`). Such a miss is no verdict:
    it teaches no bias, and the SLOMet condition is Unknown."""
    if not cfg.unproven_breach_needs_model_miss or obs.attainment_frac is None:
        return False
    requests = obs.window_requests or (obs.rate_rps or 0.0) * obs.window_s
    if requests <= 0 or not _missed_beyond_noise(1.0 - obs.attainment_frac, requests, tier, cfg):
        return False
    return unresolved_by_buckets(tier, obs, cfg) and not model_below_buckets(tier, obs, last)


def unresolved_by_buckets(tier: Tier, obs: TierObservation, cfg: PlannerConfig) -> bool:
    """Would the TPOT histogram's buckets also allow the window within its SLO? True when
    the most attainment they allow (`TierObservation.attainment_most_frac`) misses no
    more than sampling noise allows."""
    if obs.attainment_most_frac is None or not obs.rate_rps:
        return False
    requests = obs.window_requests or obs.rate_rps * obs.window_s
    if requests <= 0:
        return False
    return not _missed_beyond_noise(1.0 - obs.attainment_most_frac, requests, tier, cfg)


def model_below_buckets(tier: Tier, obs: TierObservation, last: TierDecision | None) -> bool:
    """Did the model's last prediction for this pool lie below the histogram bucket its
    percentile was then seen in, for a latency that may miss its SLO (its bucket reaches
    above the bound)? That much the buckets prove the model optimistic. No prediction
    (the first decision) proves nothing."""
    if last is None:
        return False
    pairs = (
        (obs.ttft_bucket_s, last.predicted_ttft_s, tier.slo.ttft_s),
        (obs.tpot_bucket_s, last.predicted_tpot_s, tier.slo.tpot_s),
    )
    return any(
        predicted_s < bucket[0]
        for bucket, predicted_s, bound_s in pairs
        if bucket is not None and bucket[1] > bound_s and predicted_s is not None
    )


def holds_without(tier: Tier, obs: TierObservation, share: float, cfg: PlannerConfig) -> bool:
    """Does the window's breach stay beyond sampling noise with `share` of its requests
    (a part of the window something else explains) removed, and counted as missed?

    Two parts are removed this way: the requests since the newest replica became Ready
    (its first minute, a cold cache, is not the pool's steady state) and those behind a
    queue the pool carried into the window (`backlog_share`). Removing the window
    instead of pausing on it matters: a pool answers a breach with a replica, the breach
    is counted once every replica is Ready, which is that replica's first decision, and
    so no answered breach ever taught the bias or its floor (gen-s2027-021: a tier at
    84-88 % of its 95 % target cycled 2 -> 5 -> 2 replicas). Only with attainment data;
    a percentile cannot be split."""
    if obs.attainment_frac is None or not obs.rate_rps:
        return False
    requests = obs.window_requests or obs.rate_rps * obs.window_s
    explained = requests * min(max(share, 0.0), 1.0)
    before = requests - explained
    if before <= 0.0:
        return False
    missed = (1.0 - obs.attainment_frac) * requests - explained
    return _beyond_noise(missed / before, before, tier, cfg) and missed >= cfg.breach_min_misses


def backlog_share(
    queued: tuple[float, float] | None,
    waiting_now: float | None,
    overloaded_now: bool,
    now_s: float,
    window_s: float,
) -> float:
    """The share of the metrics window a backlog the pool carried explains (0 to 1).

    `queued` is (time, waiting) of the latest earlier decision that saw the pool's queue
    longer than its Ready replicas serve within the TTFT SLO. Requests that arrived
    behind that queue miss their TTFT whatever the model: a pool scaled down into rising
    load builds a queue, and while the replicas that answer it drain it, every window
    breaches. Learning a bias from those breaches made a pool whose engine was faster
    than the model x2.0 "slower" (four breaches in a row while it drained 77 waiting),
    and under a GPU budget it then took GPUs a lower priority needed.

    - No such decision within the window: 0 (nothing to explain).
    - The queue is still that long now: all of the window if it shrank since (the pool
      drains it, as the model says it would), none if it did not (a queue that grows or
      stands at the pool's load is the model's error, or a load beyond it: learned as
      before).
    - The queue is gone: the part of the window up to that decision.
    """
    if queued is None or window_s <= 0.0:
        return 0.0
    queued_at_s, waiting_then = queued
    start_s = now_s - window_s
    if queued_at_s <= start_s or queued_at_s >= now_s:
        return 0.0
    if overloaded_now:
        return 1.0 if waiting_now is not None and waiting_now < waiting_then else 0.0
    return (queued_at_s - start_s) / window_s


def inherited_size_share(sized_up_at_s: float | None, now_s: float, window_s: float) -> float:
    """The share of the metrics window (0 to 1) before `sized_up_at_s`, the planner's first
    decision for the pool where it raised it above the size it found; None: the first
    decision is now, so all of the window. A time after `now_s` (clocks that disagree)
    explains nothing, as in `backlog_share`."""
    if sized_up_at_s is None:
        return 1.0
    if window_s <= 0.0 or sized_up_at_s > now_s:
        return 0.0
    return min(max(sized_up_at_s - (now_s - window_s), 0.0) / window_s, 1.0)


def borrowed_share(borrowed_rps: float, served_rps: float) -> float:
    """The share (0 to 1) of the requests a pool finished that were other tiers': vLLM's
    histograms are per pool, so a lender's window judges the requests it borrowed by its
    own tier's SLO, tighter than theirs, and their lengths are not its own."""
    if served_rps <= 0.0:
        return 0.0
    return min(max(borrowed_rps, 0.0) / served_rps, 1.0)


def _beyond_noise(missed_frac: float, requests: float, tier: Tier, cfg: PlannerConfig) -> bool:
    allowed = 1.0 - tier.slo.attainment_frac
    noise = cfg.breach_z * math.sqrt(max(allowed * (1.0 - allowed), 1e-12) / requests)
    return missed_frac > allowed + noise


def shortfall_planned(last: TierDecision | None) -> bool:
    """Did the last plan already know this tier would be short (budget, maxReplicas),
    and let the excess reach the pool?

    A breach the plan predicted says nothing about the model; learning from it would
    shrink the capacity of a tier the budget starves, which then looks even shorter of
    GPUs, a spiral that starved S2's largest tier down to a single replica.

    Except where the plan capped the tier's admission (`TierDecision.admission_cap_rps`)
    above 0: the pool was then offered what the model says its Ready replicas serve within
    the SLO, so a breach there is the model's error, the one thing that corrects the cap.
    (A cap of 0 is a pool given no replica: nothing it shows is about its load.)
    Without it a budget-starved pool of an engine slower than the model kept a cap of
    ~4 req/s per replica while its queue held TTFT at 7-20 s against 5 s (gen-s7-018).
    """
    if last is None or last.unserved_rate_rps <= 0.0:
        return False
    return last.admission_cap_rps is None or last.admission_cap_rps <= 0.0


def next_bias(bias: float, breached: bool, cfg: PlannerConfig) -> float:
    """Learn how much the model underestimates this pool: grows on breaches, decays otherwise."""
    if not breached:
        return 1.0 + (bias - 1.0) * cfg.bias_decay
    return min(max(bias, 1.0) * cfg.bias_step, cfg.max_bias)


def decayed_floor(floor: float, elapsed_s: float, cfg: PlannerConfig) -> float:
    """The bias floor after `elapsed_s` more seconds: its excess over 1 halves every
    `cfg.breach_memory_half_life_s` (1.0, no floor, without a memory)."""
    if cfg.breach_memory_half_life_s is None or floor <= 1.0:
        return 1.0
    halvings = max(elapsed_s, 0.0) / cfg.breach_memory_half_life_s
    return 1.0 + (floor - 1.0) * math.pow(0.5, halvings)


def floor_after(
    floor: float,
    model_capacity_rps: float,
    breached_at_rps: float | None,
    cfg: PlannerConfig,
) -> float:
    """The bias floor once a counted breach at `breached_at_rps` per Ready replica is seen.

    A pool that breaks its SLO at a per-replica load the model says it carries proves the
    model optimistic by at least their ratio, and one bias step beyond it (the load was
    over capacity, not at it). The bias alone forgets this in ~5 minutes; the planner then
    scales back down to the count that breached, and the cycle repeated every ~10 minutes
    (gen-s2027-027's batch tier: 2 -> 6 -> 2 -> 5 -> 2 replicas at a steady 11 req/s).
    A breach at more than one bias step beyond the model's capacity (a burst) proves no
    floor above 1; up to that, the floor it proves is at most the bias step the breach
    itself adds to the decaying bias, and only outlasts it.
    """
    if cfg.breach_memory_half_life_s is None or breached_at_rps is None:
        return floor
    if breached_at_rps <= 0.0 or model_capacity_rps <= 0.0:
        return floor
    proven = model_capacity_rps / breached_at_rps * cfg.bias_step
    return min(max(floor, proven), cfg.max_bias)


def floor_now(floor: float, proven_at_capacity_rps: float, capacity_rps: float) -> float:
    """The bias floor as far as its breach bounds the pool now: the floor was proven where
    the model's own capacity per replica was `proven_at_capacity_rps`, i.e. the pool serves
    at most that over `floor`; where the model now says `capacity_rps` < that, the same
    bound needs only `floor` x their ratio (at least 1). Never more than `floor`: a model
    grown more optimistic since (shorter requests) is not what the breach was about."""
    if floor <= 1.0 or proven_at_capacity_rps <= 0.0 or capacity_rps <= 0.0:
        return floor
    return max(1.0, min(floor, floor * capacity_rps / proven_at_capacity_rps))
