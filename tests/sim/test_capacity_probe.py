"""The engine probe (`capacity_probe.max_rate_rps`) on samples shorter than the TTFT SLO."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tierscale_sim import capacity_probe

from tierscale.domain.tiers import Slo
from tierscale_predictor import profiles

PROFILE = profiles.load_profile("llama-3.1-8b-h100")
RNG = np.random.default_rng(0)
PROMPTS = RNG.integers(200, 600, 2000)
OUTPUTS = RNG.integers(50, 150, 2000)
LOOSE = Slo(ttft_s=2.0, tpot_s=1.0, attainment_frac=0.95)
"""A TTFT SLO longer than a few hundred requests take to arrive at the engine's limit."""
SHORT = capacity_probe.ProbeSettings(requests=200, iterations=4, max_requests=4000)


def _probe(settings: capacity_probe.ProbeSettings) -> float:
    return capacity_probe.max_rate_rps(PROFILE, LOOSE, PROMPTS, OUTPUTS, settings=settings)


def test_an_overload_shorter_than_the_ttft_slo_is_not_read_as_met() -> None:
    long_sample = _probe(replace(SHORT, requests=4000, min_span_ttfts=0.0))
    blind = _probe(replace(SHORT, min_span_ttfts=0.0))  # 200 requests whatever the rate
    spanned = _probe(SHORT)
    # 200 requests arrive faster than the wait they queue reaches 2 s: the blind probe
    # reads a rate the engine does not serve (here ~16,000 req/s, against ~76); the
    # sample spanning ten SLOs does not (within the ~20 % two request samples differ by).
    assert blind > 10.0 * long_sample
    assert spanned <= 1.25 * long_sample


def test_a_sample_long_enough_already_gives_the_same_answer() -> None:
    tight = replace(LOOSE, ttft_s=0.05, tpot_s=0.03)
    settings = replace(SHORT, requests=400)
    spanned = capacity_probe.max_rate_rps(PROFILE, tight, PROMPTS, OUTPUTS, settings=settings)
    blind = capacity_probe.max_rate_rps(
        PROFILE, tight, PROMPTS, OUTPUTS, settings=replace(settings, min_span_ttfts=0.0)
    )
    assert spanned == blind > 0.0
