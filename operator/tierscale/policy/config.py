"""The planner's knobs, in one frozen dataclass every step reads (`PlannerConfig`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tierscale.policy import forecast
from tierscale_predictor import calibration

ForecastConfig = forecast.ForecastConfig
CalibrationSettings = calibration.CalibrationSettings
"""Aliases, so PlannerConfig's field annotations name types, not its own fields (the
serialiser resolves annotations by name: `forecast.ForecastConfig` inside the class
would find the field `forecast`)."""


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Knobs of the planner; every default is what the operator ships with."""

    stale_after_s: float = 90.0
    """Metrics older than this are stale: the tier is held, never scaled on old data."""
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    default_prompt_tokens: float = 1024.0
    """Prompt length assumed before any request of a tier has been seen."""
    default_output_tokens: float = 256.0
    breach_quantile_margin: float = 0.1
    """Without attainment data, a percentile latency above (1 + margin) x SLO is a breach."""
    breach_z: float = 2.33
    """One-sided confidence (99 %) that observed misses exceed what the SLO allows."""
    breach_min_misses: float = 3.0
    """Fewer missed requests than this in a window never count as a breach."""
    bias_step: float = 1.15
    """Each significant breach multiplies the learned bias by this."""
    max_bias: float = 2.0
    """Largest correction learned from breaches: bounded, so noise cannot ratchet forever."""
    bias_decay: float = 0.9
    """Per decision without a breach, the learned bias keeps this share of its excess over 1."""
    breach_memory_half_life_s: float | None = 1800.0
    """How long a breach's evidence bounds the pool's capacity (`breach.floor_after`): the
    bias never decays below the model's capacity over the per-replica load the pool was
    seen breaching at, and that floor's excess over 1 halves every this many seconds.
    None: no memory (the bias alone, which forgets a breach in ~5 minutes)."""
    floor_follows_model: bool = False
    """Opt-in: a breach's floor asserts no more than the breach proved in requests/s, the
    pool's capacity at most the load it breached at (over one bias step): where the model's
    own capacity for the pool has fallen since (its tail lengths moved, or the lean to the
    mean lengths let go), the floor shrinks by the same ratio (`breach.floor_now`), never
    below 1 and never above its decayed value. Off (the default), the floor's ratio applies
    to whatever the model says later. Found on gen-s20261130-003, whose chat-2 breached once
    at 1.71 req/s per replica where a lean capacity said 3.09: its x1.99 floor then halved a
    non-lean 1.1-2.0 req/s for 25 minutes (4-6 replicas where the hindsight static fleet met
    the tier with 2; on, 6.06 -> 5.57 GPU-hours, the tier still met). Measured against the
    default (`tierscale bench --generate 30 --seed S --policies tierscale`, both Azure
    traces): GPU-hours -5.5 / -3.2 / -2.9 % on seeds 7 / 2027 / 20261130, met 15 -> 14,
    20 -> 20, 14 -> 14 (4 scenarios better, 6 worse by more than 0.5 points); but on the
    Azure code trace, where each tier's floor (x2.0) is the burstiness the Poisson model
    does not know, the ratio is the stable quantity: 15.75 -> 12.44 GPU-hours and no tier
    met any more (99.27 / 99.05 / 99.13 -> 98.69 / 98.60 / 98.07 %); the conversation
    trace's interactive tier 99.02 -> 98.95 %. So it stays off (docs/planner.md step 5)."""
    floor_load_without_newest: bool = True
    """The load a breach proves a floor at is per replica that carried the window: where
    the newest replica is in its first minute (`first_minute_s`), it is not counted, so a
    pool of one loaded replica and one just Ready breached at the first one's load, not at
    half of it (`planner._bias_floor`). False: per Ready replica now (an ablation)."""
    learn_batch_limit: bool = True
    """A pool whose replicas each run few requests while requests wait and the KV cache
    has room, at two decisions in a row, is planned with that batch limit where it lowers
    the pool's capacity by more than 10 % (`policy/batch_limit.py`). False: every pool at
    the model's `max_num_seqs` (the behaviour before; an ablation)."""
    hold_lender_lengths: bool = True
    """A pool the last decision routed other lengths onto (another tier's, of a mean prompt
    or output more than 1.2x above or below its own) keeps planning its own tier at the
    request lengths it learned before (`lender_lengths.borrows_other_lengths`). False: at
    the pool's mixed lengths (the behaviour before; an ablation)."""
    first_minute_s: float = 60.0
    """A pool's metrics from this long after a replica became Ready (a cold cache, a
    half-filled batch) teach neither the bias nor the calibration: every window that
    overlaps it, i.e. until `first_minute_s` plus the window after the newest Ready
    (the bias still learns from a breach that holds without them:
    `learn_before_first_minute`)."""
    learn_before_first_minute: bool = True
    """Learn the bias and its floor from a breach that holds with every request since the
    newest replica became Ready counted as missed and removed
    (`breach.holds_without`). False: no breach in such a window teaches."""
    backlog_explains_breaches: bool = True
    """A breach learns the bias and its floor only where it holds with the part of the
    window a queue the pool carried into it explains removed and counted as missed
    (`breach.backlog_share`): a pool draining a backlog breaches whatever its model.
    False: every counted breach teaches (the behaviour before; an ablation)."""
    inherited_size_explains_breaches: bool = True
    """A breach learns the bias and its floor only where it holds with the part of the
    window before the planner first sized the pool removed and counted as missed
    (`breach.inherited_size_share`): all of the window at the tier's first decision, and
    where that decision raised the pool above the size it found (mostly the guard's
    replica for the breach it saw), the part up to it. Those windows show a pool the
    planner had not sized (a run starts every pool at its minimum under full load; in a
    cluster, whatever ran it before) and are the first seconds of its record: 35 of the
    82 floors above x1.3 on three generator seeds were proven within the first 120 s,
    most at x2.0. A first decision that did not raise the pool chose its size: later
    windows teach in full. False: such windows teach like any other (the behaviour
    before; an ablation)."""
    borrowed_requests_explain_breaches: bool = True
    """A breach learns the bias and its floor only where it holds with the requests the
    pool finished for other tiers removed and counted as missed (`breach.borrowed_share`:
    the larger of what the last decision routed onto the pool and what it finished
    beyond its tier's own arrivals). vLLM's histograms are per pool, so a lender's window
    judges a looser tier's requests, often longer, by the lender's tighter SLO: on
    gen-s20261130-012 one interval of 1.58 req/s lent to chat-0 was followed by a chat-0
    floor of x1.25 that, under the 15-GPU budget, took standard-1's seventh replica
    (75.0 % of its 90 %; without spillover 96.3 %). False: a lender's window teaches like
    any other (the behaviour before; an ablation)."""
    unproven_breach_needs_model_miss: bool = True
    """A miss the TPOT histogram's buckets do not prove (the TPOT SLO lies inside the
    bucket that holds the percentile, e.g. a 20 ms SLO in vLLM's 10-25 ms bucket, where
    the linear estimate reads a pool at 12-18 ms per token as missing a third of its
    requests) is a breach only where the model's last prediction lies below that bucket;
    otherwise what was seen is what the model predicted, and the verdict is None (not
    judged) rather than a bias learned from the buckets' resolution (`breach.unproven`).
    TTFT stays read linearly: a TTFT percentile mixes queueing behind bursts and long
    prompts the model knows less well, and applied to TTFT too the rule cut GPU-hours by
    8.1 % and 4.7 % on generator seeds 7 and 2027 while 6 long-prompt interactive tiers
    that already missed lost 0.5-3 points. False: the linear estimate decides alone (the
    behaviour before; an ablation)."""
    admission_caps: Literal["on_overload", "always"] = "on_overload"
    """When a pool's Envoy admission cap (the plan's capacity of its Ready replicas) binds.
    `on_overload`: only where the pool shows overload: its SLO observed breached, its
    waiting queue longer than the TTFT SLO takes to drain at the planned capacity, or
    replicas still loading while the demand exceeds what the Ready ones serve. A shortfall
    only the model predicts is no reason: caps sized from a model more pessimistic than
    the pool turned away 4,648 of 78,767 requests on the S3 conversation trace.
    `always`: every pool, every decision (the behaviour before; an ablation)."""
    drain_backlog: bool = True
    """Add to a tier's demand the rate that drains its pool's waiting queue within
    `max(cold start, backlog_drain_s)`, where the queue is longer than the Ready replicas
    serve within the TTFT SLO (`backlog.py`)."""
    backlog_drain_s: float = 60.0
    """Shortest time a backlog is planned to drain over (seconds)."""
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    """How fast and how far the pool models follow the pools' observed percentiles."""
    calibration_min_tail_requests: float = 3.0
    """Calibrate only on windows with this many requests beyond the SLO percentile
    (300 requests for a p99): a p99 of 60 requests is the slowest request, not a p99."""
    spill_only_when_short: bool = True
    """Plan replicas for spillover only where the pools on their own cannot serve the
    demand (a GPU cap or maxReplicas binds); otherwise every pool gets the replicas its own
    demand needs and spillover is left to routing while replicas load
    (`target.own_pools_first`)."""
    margins_yield_to_demand: bool = True
    """Under a binding GPU budget, serve every tier's observed demand (by priority) before
    any tier's forecast margins and learned bias (see `margins_last`)."""
    length_smoothing: float = 0.1
    """Weight of the newest window in the smoothed p99 request lengths (1 = none). 0.1
    (time constant ~2.5 min at 15 s decisions), measured by `bench/planner_ablation.py`
    (2 seeds) against no smoothing: diurnal ramp 17.90 -> 15.67 GPU-hours, S2 at 80 %
    load 86.6 -> 96.6 % of requests in SLO; conversation trace 6.93 -> 7.00 GPU-hours."""
    smooth_mean_noise: bool = True
    """Smooth a mean request length like the p99s where it moved by less than `breach_z`
    standard errors of the window's mean (sampling noise), take it as observed where it
    moved further (`lengths.smoothed_lengths`). False: means always as observed."""
    calibrate_tpot: bool = False
    """Learn a TPOT multiplier per pool from its observed SLO-percentile TPOT. Off by
    default on the measurements of `bench/planner_ablation.py` (2 seeds): it helped where
    the fitted model is optimistic (S3 conversation trace: 7.00 -> 6.79 GPU-h, standard
    tier 99.43 -> 99.82 %), but a window's percentile is noisy enough that, under a
    binding GPU budget, its upward swings starve the lowest tier (S2 at 80 % load: 96.6 ->
    88.5 % of requests in SLO), and on the bursty code trace it bought 64 % more
    GPU-hours (7.08 -> 11.61). The breach guard's bias, which reacts only to significant
    misses, stays on."""
    calibrate_tpot_mean: bool = False
    """Learn the TPOT multiplier from the pool's observed mean TPOT (the histogram's sum /
    count) against the model's mean at the same load, read as an offset at the SLO
    percentile (`calibrate._mean_tpot_mult`), instead of from the percentile itself
    (`calibrate_tpot`, which it replaces for TPOT). Opt-in: on the mismatch benchmark
    (`bench/mismatch_recovery.py`) it met the same 16 of 21 scenarios as the default at
    1.29x the oracle's GPU-hours (median; default 1.25x) (docs/bench/NOTES.md)."""
    calibration_min_mean_requests: float = 30.0
    """Learn from a window's mean TPOT only where this many requests finished in it."""
    calibrate_ttft: bool = False
    """Also learn a TTFT multiplier. Off: a TTFT percentile mixes the model's error with
    queueing from arrival bursts the Poisson model does not know, and a multiplier on a
    queueing-dominated latency near its knee moves capacity a lot between windows (same
    benchmark, conversation trace: TPOT+TTFT vs default +14 % GPU-hours for +0.34 points
    on the interactive tier; budget crunch: standard 27.6 -> 12.1 %). TPOT is the step
    time itself, the quantity the fitted model predicts."""
    calibration_bucket_evidence: bool = True
    """Learn only what vLLM's histogram buckets prove: an observed percentile in the same
    bucket as the prediction teaches nothing, one outside moves the model to the bucket's
    nearer edge (`calibrate._proven`). False: learn from the interpolated value (before)."""
    calibration_step: float = 0.02
    """Multipliers are kept on this grid, so unchanged pools hit the capacity cache."""
    tpot_miss_share: tuple[float, float] = (0.5, 0.5)
    """The least and the most share of a tier's miss budget (1 - attainment) TPOT is given
    when each replica is sized; TTFT gets the rest (`latency.SloTarget.tpot_share_frac`).
    (0.5, 0.5), the default, is the equal split: each latency at `planning_percentile`.
    (0.0, 0.5) gives TTFT what TPOT is predicted not to need; measured and left off: the
    engine misses the target in 28 of 72 TTFT-bound cases sized that way against 1 of 72
    (`bench/attainment_fidelity.py --ttft-bound --split 0 0.5`), and the development seeds
    lost met scenarios (docs/predictor.md, "TTFT where it binds")."""
    tail_floor_frac: float = 0.5
    """Capacity is never planned below this share of the capacity for the same mean lengths
    without the observed p99 tails: the longest prompts miss a tight TTFT even on an idle
    replica, so replicas bought for them buy nothing (a single 10k-token prompt in the
    window once drove a tier to maxReplicas). Significant observed misses still scale up
    through the breach guard."""
    tail_cliff_busy_frac: float = 0.1
    """Where an idle replica still meets the planning percentile at the observed tails but
    only up to this busy fraction, the tier's own capacity leans linearly to
    `tail_floor_frac` of the mean lengths' (fully at busy 0: no replica meets it); 0
    turns the lean off (the floor then applies only where no replica meets the tail).
    A replica allowed to be 10 % busy has about 1 / (1 - 0.1) = 1.11x latency headroom
    at idle: nearer the edge the model's own errors decide whether the tail is met at
    all, whatever the replica count (`capacities.tail_cliff_frac`). 0.10, 0.15 and 0.25
    were measured (docs/planner.md, "Tails a replica barely meets"): each saved 4-28 % of
    GPU-hours on the development seeds and traces; above 0.10 the conversation trace's
    interactive tier fell below its 99 % (98.94 % at 0.15)."""
    own_capacity_rps_by_tier: Mapping[str, float] = field(default_factory=dict)
    """Diagnostics only, never set by the operator: tier key -> the requests/s one replica
    of the tier's own pool serves, used instead of the model's (still over the pool's
    learned bias). The simulator's `engine-capacity` policy passes the engine's own
    capacity (the probe that sizes `static` and `oracle`) to measure what the control loop
    would spend if its capacity model were exact (docs/benchmarks.md, "With the engine's
    own capacity"). Tiers not named, and values <= 0, keep the model's."""
