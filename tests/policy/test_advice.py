"""Engine-argument advice: what the predictor says other vLLM arguments would serve."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench import engine_advice as bench
from tierscale.policy.advice import MIN_GAIN, engine_advice
from tierscale_predictor import capacity, latency
from tierscale_predictor.profiles import load_profile

PROFILE = load_profile("llama-3.1-8b-h100")
H100 = latency.LatencyModel.from_profile(PROFILE)
CODE = latency.WorkloadShape(2048, 28, prompt_tokens_p99=8000, output_tokens_p99=250)
"""Code completion: 2k-token prompts, short answers (the Azure code trace's shape)."""
IDE = latency.SloTarget(0.5, 0.03, 99.5)


def test_a_tpot_that_prefill_chunks_break_gets_smaller_chunks() -> None:
    advice = engine_advice(H100, IDE, CODE)
    assert advice is not None
    assert advice.args == (("--max-num-batched-tokens", 512), ("--max-num-seqs", 512))
    assert advice.now_args == (("--max-num-batched-tokens", 8192), ("--max-num-seqs", 1024))
    assert advice.bound_by == "TPOT"
    assert advice.now_capacity_rps == capacity.max_rate_rps(H100, IDE, CODE)
    assert advice.capacity_rps > 2.0 * advice.now_capacity_rps
    assert "one replica would serve" in advice.text() and ";" not in advice.text()


def test_the_advice_holds_on_the_engine() -> None:
    """At a rate between the two capacities, the step engine (vLLM V1's scheduling and
    chunked prefill) misses the SLO with the pool's arguments and meets it with the
    advised ones: the advice is about the engine, not only about the model."""
    advice = engine_advice(H100, IDE, CODE)
    assert advice is not None
    rate_rps = 4.0
    assert advice.now_capacity_rps < rate_rps < advice.capacity_rps
    rng = np.random.default_rng(0)
    prompts = bench.lognormal_lengths(2048, 0.64, 2000, bench.PROMPT_MAX, rng)
    outputs = bench.lognormal_lengths(28, 1.3, 2000, bench.OUTPUT_MAX, rng)

    def attainment(flags: tuple[tuple[str, int], ...]) -> float:
        args = bench.engine_kwargs(flags)
        return bench.attainment(PROFILE, IDE, rate_rps, prompts, outputs, args)

    target = 1.0 - 2.0 * (1.0 - IDE.percentile / 100.0)  # both latencies at p99.5: 99 %
    assert attainment(advice.now_args) < target <= attainment(advice.args)


def test_no_advice_where_the_arguments_fit() -> None:
    chat = latency.WorkloadShape(1000, 300, prompt_tokens_p99=4000, output_tokens_p99=1200)
    assert engine_advice(H100, latency.SloTarget(1.0, 0.05, 99.5), chat) is None
    # TTFT binds (an idle replica misses 300 ms at the p99 prompt): smaller chunks only
    # lengthen the prefill.
    long_prompts = latency.WorkloadShape(2000, 100, prompt_tokens_p99=9000)
    assert engine_advice(H100, latency.SloTarget(0.3, 0.03, 99.5), long_prompts) is None
    # Already at the smallest chunk tried.
    small = replace(H100, max_num_batched_tokens=512, max_num_seqs=256)
    assert engine_advice(small, IDE, CODE) is None


def test_a_batch_max_num_seqs_stops_gets_more_sequences_while_the_kv_cache_holds_them() -> None:
    few = replace(H100, max_num_seqs=32)
    short = latency.WorkloadShape(200, 100, prompt_tokens_p99=800, output_tokens_p99=400)
    loose = latency.SloTarget(30.0, 1.0, 99.0)
    advice = engine_advice(few, loose, short)
    assert advice is not None and advice.bound_by == "the decoding batch"
    assert advice.args == (("--max-num-seqs", 128),)
    assert advice.capacity_rps >= MIN_GAIN * advice.now_capacity_rps
    # Where the KV cache, not max_num_seqs, holds the batch, more sequences buy nothing.
    long = latency.WorkloadShape(12000, 2000, prompt_tokens_p99=16000, output_tokens_p99=2048)
    assert engine_advice(H100, loose, long) is None


def test_capacities_are_divided_by_the_pools_breach_bias() -> None:
    plain = engine_advice(H100, IDE, CODE)
    biased = engine_advice(H100, IDE, CODE, bias=2.0)
    assert plain is not None and biased is not None
    assert biased.capacity_rps == plain.capacity_rps / 2.0
    assert biased.now_capacity_rps == plain.now_capacity_rps / 2.0


def test_skipping_a_try_that_cannot_beat_the_bar_changes_no_advice() -> None:
    """`_may_serve_more` skips a tried argument's capacity bisection when one probe shows
    it cannot serve more than the bar: on shapes and SLOs around the ones that get advice
    and the ones that do not, the advice is the one every bisection gives."""
    from tierscale.policy import advice as module

    def every_bisection(
        model: latency.LatencyModel, slo: latency.SloTarget, shape: latency.WorkloadShape
    ) -> module.EngineAdvice | None:
        now_rps = capacity.max_rate_rps(model, slo, shape)
        u = capacity.max_busy_frac(model, slo, shape)
        limits = latency.failing_limits(model, min(u + 1e-4, 1.0), slo, shape)
        tries = [
            *(module._smaller_chunks(model) if "tpot" in limits else ()),
            *(module._more_sequences(model, shape) if "batch" in limits else ()),
        ]
        best = None
        for args, now, bound_by, trial in tries:
            rps = capacity.max_rate_rps(trial, slo, shape)
            if rps > MIN_GAIN * now_rps and (best is None or rps > best.capacity_rps):
                best = module.EngineAdvice(args, rps, now_rps, now, bound_by)
        return best

    given = 0
    for prompt, output in ((2048, 28), (1000, 200), (300, 500), (4000, 60), (600, 900)):
        for ttft_s, tpot_s in ((0.5, 0.03), (1.0, 0.05), (0.3, 0.02), (5.0, 0.1), (2.0, 0.025)):
            shape = latency.WorkloadShape(
                prompt, output, prompt_tokens_p99=4 * prompt, output_tokens_p99=3 * output
            )
            slo = latency.SloTarget(ttft_s, tpot_s, 99.0)
            expected = every_bisection(H100, slo, shape)
            assert module._unbiased_advice.__wrapped__(H100, slo, shape) == expected
            given += expected is not None
    assert 0 < given < 25  # both kinds of answer were checked
