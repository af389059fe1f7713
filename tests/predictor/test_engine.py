"""The engine model against hand-computed schedules, its invariants, and SABER's curve."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierscale_predictor import loadgen
from tierscale_predictor.engine import EngineRequest, Replica, RequestTiming, simulate
from tierscale_predictor.profiles import StepProfile, load_profile

TINY = StepProfile(
    name="tiny",
    model="m",
    gpu="g",
    base_s=0.010,
    prefill_s_per_token=0.001,
    decode_s_per_seq=0.002,
    context_s_per_token=0.0001,
    kv_capacity_tokens=1024,
    max_num_batched_tokens=64,
    max_num_seqs=4,
)


def by_id(timings: list[RequestTiming]) -> dict[int, RequestTiming]:
    return {t.request_id: t for t in timings}


def test_single_request_prefill_then_decodes_with_growing_context() -> None:
    (t,) = simulate(TINY, [EngineRequest(0, 0.0, prompt_tokens=10, output_tokens=3)])
    prefill = 0.010 + 10 * 0.001 + 10 * 0.0001  # 10 tokens, context 10
    decode1 = 0.010 + 0.002 + 11 * 0.0001
    decode2 = 0.010 + 0.002 + 12 * 0.0001
    assert t.first_scheduled_s == 0.0
    assert t.ttft_s == pytest.approx(prefill)
    assert t.finish_s == pytest.approx(prefill + decode1 + decode2)
    assert t.tpot_s == pytest.approx((decode1 + decode2) / 2)
    assert t.preemptions == 0


def test_long_prompt_is_chunked_by_the_token_budget() -> None:
    (t,) = simulate(TINY, [EngineRequest(0, 0.0, prompt_tokens=100, output_tokens=1)])
    chunk1 = 0.010 + 64 * 0.001 + 64 * 0.0001
    chunk2 = 0.010 + 36 * 0.001 + 100 * 0.0001
    assert t.ttft_s == pytest.approx(chunk1 + chunk2)
    assert t.finish_s == t.first_token_s  # one output token: done at the first token
    assert t.tpot_s == 0.0


def test_decodes_go_first_and_a_late_arrival_waits_for_the_next_step_boundary() -> None:
    a = EngineRequest(0, 0.0, prompt_tokens=10, output_tokens=3)
    b = EngineRequest(1, 0.005, prompt_tokens=20, output_tokens=2)
    timings = by_id(simulate(TINY, [a, b]))
    s1 = 0.010 + 10 * 0.001 + 10 * 0.0001  # a's prefill; b arrives during it
    # step 2: a decodes (context 11) and b prefills 20 tokens (context 20) together
    s2 = 0.010 + 20 * 0.001 + 0.002 + (11 + 20) * 0.0001
    # step 3: both decode, contexts 12 and 21; a finishes (3 tokens), b finishes (2)
    s3 = 0.010 + 2 * 0.002 + (12 + 21) * 0.0001
    assert timings[1].first_scheduled_s == pytest.approx(s1)
    assert timings[1].queue_s == pytest.approx(s1 - 0.005)
    assert timings[1].first_token_s == pytest.approx(s1 + s2)
    assert timings[0].finish_s == pytest.approx(s1 + s2 + s3)
    assert timings[1].finish_s == pytest.approx(s1 + s2 + s3)


def test_max_num_seqs_caps_the_batch() -> None:
    requests = [EngineRequest(i, 0.0, 4, 5) for i in range(3)]
    timings = by_id(simulate(TINY, requests, max_num_seqs=2))
    assert timings[2].first_scheduled_s == pytest.approx(timings[0].finish_s)


def test_deadline_slo_scores_every_token() -> None:
    prefill = 0.010 + 10 * 0.001 + 10 * 0.0001
    decode = 0.010 + 0.002 + 11 * 0.0001
    ok = EngineRequest(0, 0.0, 10, 2, ttft_slo_s=prefill + 1e-6, tpot_slo_s=decode)
    late = EngineRequest(0, 0.0, 10, 2, ttft_slo_s=prefill + 1e-6, tpot_slo_s=decode - 2e-6)
    assert simulate(TINY, [ok])[0].deadline_met
    assert not simulate(TINY, [late])[0].deadline_met


def test_idle_replica_jumps_to_the_horizon_and_runs_only_steps_started_before_it() -> None:
    replica = Replica(TINY)
    assert replica.run_until(5.0) == []
    assert replica.now_s == 5.0 and replica.is_idle
    replica.submit(EngineRequest(0, 6.0, 10, 3))
    assert replica.run_until(6.0) == []  # arrival at 6.0: no step starts before 6.0
    assert replica.num_waiting == 1 and replica.now_s == 6.0
    assert replica.run_until(6.001) == []  # prefill step starts at 6.0, ends after 6.001
    assert replica.num_running == 1 and replica.now_s > 6.02
    (t,) = replica.drain()
    assert t.arrival_s == 6.0
    with pytest.raises(ValueError, match="before .* the time this replica was already run to"):
        replica.submit(EngineRequest(1, 1.0, 10, 3))


def test_an_arrival_inside_a_running_step_waits_for_its_end() -> None:
    replica = Replica(TINY)
    replica.submit(EngineRequest(0, 0.0, 10, 3))
    replica.run_until(0.001)  # the prefill step runs 0 .. 0.021
    assert replica.now_s == pytest.approx(0.021)
    replica.submit(EngineRequest(1, 0.002, 5, 1))  # after the horizon, inside the step
    timings = by_id(replica.drain())
    assert timings[1].arrival_s == 0.002
    assert timings[1].first_scheduled_s == pytest.approx(0.021)
    assert timings[1].queue_s == pytest.approx(0.019)


def short_kv_profile() -> StepProfile:
    return StepProfile(
        name="short-kv",
        model="m",
        gpu="g",
        base_s=0.01,
        prefill_s_per_token=0.0001,
        decode_s_per_seq=0.001,
        context_s_per_token=0.00001,
        kv_capacity_tokens=256,
        max_num_batched_tokens=512,
        max_num_seqs=64,
    )


class KvWatchingReplica(Replica):
    """Checks block accounting after every step."""

    def _execute(self, scheduled: list[tuple[object, int]]) -> None:  # type: ignore[override]
        super()._execute(scheduled)  # type: ignore[arg-type]
        assert 0 <= self.kv_used_blocks <= self.profile.kv_capacity_blocks
        assert self.kv_used_blocks == sum(s.blocks for s in self._running)


def test_kv_never_exceeds_capacity_and_preemption_recomputes_when_short() -> None:
    profile = short_kv_profile()
    requests = [EngineRequest(i, 0.001 * i, 40, 60) for i in range(6)]
    replica = KvWatchingReplica(profile)
    for r in requests:
        replica.submit(r)
    timings = replica.drain()
    assert len(timings) == 6
    assert sum(t.preemptions for t in timings) > 0
    assert all(t.finish_s >= t.first_token_s >= t.first_scheduled_s for t in timings)


def test_kv_usage_fraction_reports_used_blocks() -> None:
    replica = Replica(short_kv_profile())
    replica.submit(EngineRequest(0, 0.0, 17, 50))
    replica.run_until(0.0001)  # the prefill step: 17 tokens -> 2 blocks of 16
    assert replica.kv_used_tokens == 17
    assert replica.kv_usage_frac == pytest.approx(2 / 16)
    assert replica.outstanding_tokens == 49


def poisson(
    seed: int, n: int, rate: float, max_prompt: int, max_output: int
) -> list[EngineRequest]:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
    return [
        EngineRequest(
            i,
            float(arrivals[i]),
            int(rng.integers(1, max_prompt + 1)),
            int(rng.integers(1, max_output + 1)),
            ttft_slo_s=0.3,
            tpot_slo_s=0.02,
        )
        for i in range(n)
    ]


def test_same_inputs_same_outputs() -> None:
    requests = poisson(7, 200, 20.0, 2000, 200)
    profile = load_profile("llama-3.1-8b-h100")
    assert simulate(profile, requests) == simulate(profile, requests)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    rate=st.floats(0.5, 40.0),
    kv_tokens=st.sampled_from([400, 2000, 100_000]),
    max_seqs=st.integers(1, 12),
    cut_s=st.floats(0.01, 3.0),
    just_in_time=st.booleans(),
    real_vllm_terms=st.booleans(),
)
def test_fast_forward_equals_step_by_step(
    seed: int,
    rate: float,
    kv_tokens: int,
    max_seqs: int,
    cut_s: float,
    just_in_time: bool,
    real_vllm_terms: bool,
) -> None:
    """Also when requests are submitted as they arrive (a router: run to the arrival, then
    submit, often inside a running step), not all up front; and with the compute-bound
    line, prefill attention and the costs outside the step switched on."""
    extra = (
        {
            "compute_s_per_token": 1.5e-3,
            "compute_floor_s": 0.004,
            "attention_s_per_token_pair": 1e-7,
            "request_overhead_s": 0.003,
            "request_overhead_s_per_prompt_token": 1e-5,
            "first_token_overhead_s": 0.002,
            "output_s_per_token": 0.001,
        }
        if real_vllm_terms
        else {}
    )
    profile = StepProfile(
        name="p",
        model="m",
        gpu="g",
        base_s=0.005,
        prefill_s_per_token=2e-5,
        decode_s_per_seq=3e-4,
        context_s_per_token=1e-6,
        kv_capacity_tokens=kv_tokens,
        max_num_batched_tokens=256,
        max_num_seqs=max_seqs,
        decode_knee_seqs=4,
        decode_s_per_seq_above_knee=1e-4,
        **extra,
    )
    requests = [
        r
        for r in poisson(seed, 40, rate, 150, 120)
        if r.prompt_tokens + r.output_tokens <= kv_tokens
    ]

    def run(fast: bool) -> tuple[list[RequestTiming], list[tuple[float, int, int, int]]]:
        replica = Replica(profile, fast_forward=fast)
        seen: list[tuple[float, int, int, int]] = []
        out: list[RequestTiming] = []

        def look() -> None:
            state = (replica.now_s, replica.num_running, replica.kv_used_tokens)
            seen.append((*state, replica.outstanding_tokens))

        t = 0.0
        for r in requests:
            if just_in_time:
                out += replica.run_until(r.arrival_s)
                t = r.arrival_s
                look()
            replica.submit(r)
        while not replica.is_idle:
            t += cut_s
            out += replica.run_until(t)
            look()
        return sorted(out, key=lambda x: x.request_id), seen

    fast, fast_seen = run(True)
    slow, slow_seen = run(False)
    assert len(fast) == len(slow) == len(requests)
    for a, b in zip(fast, slow, strict=True):
        assert a.first_token_s == pytest.approx(b.first_token_s, rel=1e-9, abs=1e-9)
        assert a.finish_s == pytest.approx(b.finish_s, rel=1e-9, abs=1e-9)
        assert (a.preemptions, a.deadline_met) == (b.preemptions, b.deadline_met)
    assert [s[1:] for s in fast_seen] == [s[1:] for s in slow_seen]
    assert [s[0] for s in fast_seen] == pytest.approx([s[0] for s in slow_seen], rel=1e-9)


SABER_SPEED_TOK_S_BY_CONCURRENCY = {1: 95.0, 20: 63.0, 40: 52.0, 60: 45.0}


@pytest.mark.parametrize(("concurrency", "speed_tok_s"), SABER_SPEED_TOK_S_BY_CONCURRENCY.items())
def test_code_model_profile_matches_saber_speed_curve(concurrency: int, speed_tok_s: float) -> None:
    profile = load_profile("qwen2.5-coder-3b-a100")
    timings = loadgen.closed_loop(
        profile, concurrency, 665, 387, num_requests=max(2 * concurrency, 10)
    )
    speed = 1.0 / loadgen.summarize(timings).tpot_mean_s
    assert speed == pytest.approx(speed_tok_s, rel=0.05)


def test_bundled_profiles_carry_their_sources() -> None:
    from tierscale_predictor.profiles import bundled_profile_names

    names = bundled_profile_names()
    assert {"llama-3.1-8b-h100", "llama-3.1-8b-a100-80gb", "qwen2.5-coder-3b-a100"} <= set(names)
    for name in names:
        profile = load_profile(name)
        assert profile.sources and math.isfinite(profile.step_s(100, 10, 1000))
