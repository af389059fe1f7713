"""What the planner learns about request lengths: p99 tails smoothed across decisions.

The smoothed lengths are state (`PlannerState.lengths_by_tier`), carried from one decision
to the next; the workload shape built from them is what capacities are computed for.
"""

from __future__ import annotations

import math

from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import PlannerState
from tierscale.policy.config import PlannerConfig
from tierscale_predictor import latency

Lengths = tuple[float, float, float | None, float | None]
"""Prompt mean, output mean, prompt p99, output p99 (tokens)."""


def smoothed_lengths(obs: TierObservation, prior: PlannerState, cfg: PlannerConfig) -> Lengths:
    """Request lengths with the p99s smoothed across decisions (EWMA in log space).

    One window's p99 prompt rests on a handful of requests and moves capacity from tick
    to tick; scale-up acts at once and scale-down waits for the window, so every unlucky
    draw bought replicas (see `length_smoothing` for what it cost). A mean moves by the
    same EWMA where it moved within the window's sampling noise (`smooth_mean_noise`:
    `breach_z` standard errors of a mean of that many requests, with the spread the
    smoothed p99 implies), and is taken as observed where it moved further, so a real
    shift in lengths still counts at once. A low-rate tier's mean rests on a handful of
    requests: 4-6 per window moved gen-s2027-012's capacity between 0.06 and 11.8 req/s.
    """
    raw = (
        obs.prompt_tokens_mean or cfg.default_prompt_tokens,
        obs.output_tokens_mean or cfg.default_output_tokens,
        obs.prompt_tokens_p99,
        obs.output_tokens_p99,
    )
    old = prior.lengths_by_tier.get(obs.tier_key)
    if old is None:
        return raw
    a = cfg.length_smoothing
    requests = obs.window_requests or (obs.rate_rps or 0.0) * obs.window_s

    def mean(new: float, before: float, p99: float | None, which: str) -> float:
        """A shift beyond the window's sampling noise counts at once; noise is smoothed."""
        if not cfg.smooth_mean_noise or before <= 0.0 or requests <= 0.0:
            return new
        noise = cfg.breach_z * latency.length_cv(before, p99, which) * before
        if abs(new - before) > noise / math.sqrt(requests):
            return new
        return math.exp(a * math.log(new) + (1.0 - a) * math.log(before))

    def blend(new: float | None, before: float | None) -> float | None:
        if new is None or new <= 0.0:
            return before
        if before is None or before <= 0.0:
            return new
        return math.exp(a * math.log(new) + (1.0 - a) * math.log(before))

    return (
        mean(raw[0], old[0], old[2], "prompt"),
        mean(raw[1], old[1], old[3], "output"),
        blend(raw[2], old[2]),
        blend(raw[3], old[3]),
    )


def shape(lengths: Lengths) -> latency.WorkloadShape:
    """Request lengths, rounded to 2 significant digits so capacity lookups repeat exactly."""
    prompt, output, prompt_p99, output_p99 = lengths
    return latency.WorkloadShape(
        prompt_tokens_mean=_round_sig(prompt),
        output_tokens_mean=_round_sig(output),
        prompt_tokens_p99=_round_sig(max(prompt_p99, prompt)) if prompt_p99 else None,
        output_tokens_p99=_round_sig(max(output_p99, output)) if output_p99 else None,
    )


def _round_sig(value: float, digits: int = 2) -> float:
    if value <= 0.0:
        return 1.0
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return max(round(value * scale) / scale, 1.0)
