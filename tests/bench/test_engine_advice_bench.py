"""bench/engine_advice.py scores requests on the engine as the simulator's probe does."""

from __future__ import annotations

import numpy as np

from bench import engine_advice as bench
from tierscale_predictor import latency, profiles

PROFILE = profiles.load_profile("llama-3.1-8b-h100")


def test_attainment_counts_requests_within_both_targets() -> None:
    rng = np.random.default_rng(0)
    prompts = bench.lognormal_lengths(1000, 0.5, 300, bench.PROMPT_MAX, rng)
    outputs = bench.lognormal_lengths(50, 0.5, 300, bench.OUTPUT_MAX, rng)
    assert prompts.max() <= bench.PROMPT_MAX and prompts.min() >= 1
    loose = latency.SloTarget(60.0, 1.0)
    assert bench.attainment(PROFILE, loose, 1.0, prompts, outputs, {}) == 1.0
    impossible = latency.SloTarget(1e-4, 1e-5)
    assert bench.attainment(PROFILE, impossible, 1.0, prompts, outputs, {}) == 0.0
    flags = (("--max-num-batched-tokens", 512), ("--max-num-seqs", 256))
    assert bench.engine_kwargs(flags) == {"max_num_batched_tokens": 512, "max_num_seqs": 256}
