"""Synthetic load on one engine replica: the ground truth the predictor is checked against.

Two load shapes, the two that real measurements use: closed loop at a fixed concurrency
(`vllm bench serve --max-concurrency N`, SABER's speed-vs-load curve) and open-loop Poisson
arrivals at a rate (what a tier's traffic looks like to a replica). Randomness only
through a passed-in `numpy.random.Generator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tierscale_predictor.engine import EngineRequest, Replica, RequestTiming
from tierscale_predictor.latency import WorkloadShape
from tierscale_predictor.profiles import StepProfile


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """Request-level percentiles of one run (seconds)."""

    requests: int
    ttft_p50_s: float
    ttft_p_s: float
    tpot_mean_s: float
    tpot_p_s: float
    percentile: float


def summarize(timings: Sequence[RequestTiming], percentile: float = 99.0) -> LoadSummary:
    if not timings:
        raise ValueError("no finished requests to summarize")
    ttft = np.fromiter((t.ttft_s for t in timings), float, len(timings))
    tpot = np.fromiter((t.tpot_s for t in timings if t.output_tokens > 1), float)
    if tpot.size == 0:
        tpot = np.zeros(1)
    return LoadSummary(
        requests=len(timings),
        ttft_p50_s=float(np.percentile(ttft, 50)),
        ttft_p_s=float(np.percentile(ttft, percentile)),
        tpot_mean_s=float(tpot.mean()),
        tpot_p_s=float(np.percentile(tpot, percentile)),
        percentile=percentile,
    )


def closed_loop(
    profile: StepProfile,
    concurrency: int,
    prompt_tokens: int,
    output_tokens: int,
    num_requests: int,
    *,
    warmup_requests: int | None = None,
    max_num_seqs: int | None = None,
) -> list[RequestTiming]:
    """Keep `concurrency` identical requests in flight; a finished one is replaced at once.

    Returns the timings after the warm-up (default: the first `2 * concurrency` requests),
    which is the steady state a load sweep reports.
    """
    if concurrency < 1 or num_requests < 1:
        raise ValueError("concurrency and num_requests must be >= 1")
    warmup = 2 * concurrency if warmup_requests is None else warmup_requests
    replica = Replica(profile, max_num_seqs=max_num_seqs)
    total = num_requests + warmup
    submitted = 0
    # Clients start spread over one request lifetime (as a long-running benchmark ends up),
    # not all at t=0: identical requests started together stay phase-locked forever.
    lifetime_s = output_tokens * profile.step_s(
        prompt_tokens * concurrency / output_tokens,
        concurrency,
        concurrency * (prompt_tokens + output_tokens / 2),
    )
    starts_s = [lifetime_s * i / concurrency for i in range(min(concurrency, total))]
    for arrival_s in starts_s:
        replica.submit(EngineRequest(submitted, arrival_s, prompt_tokens, output_tokens))
        submitted += 1
    done: list[RequestTiming] = []
    while len(done) < total:
        if replica.num_running == 0 and replica.num_waiting == 0:
            # Idle until a client's next request reaches the scheduler (its first, or one
            # sent after the last token was delivered): jump there without a step.
            replica.run_until(max(replica.now_s, replica.next_arrival_s))
        # A step always lasts > 1 ns, so this executes exactly the step starting now.
        finished = replica.run_until(replica.now_s + 1e-9)
        for timing in finished:
            if timing.request_id < total:
                done.append(timing)
            # Keep the load at `concurrency` until the last measured request is done, or
            # the measured tail would run at a falling concurrency.
            replica.submit(EngineRequest(submitted, timing.finish_s, prompt_tokens, output_tokens))
            submitted += 1
    done.sort(key=lambda t: t.request_id)
    return done[warmup:]


def poisson_requests(
    rng: np.random.Generator,
    rate_rps: float,
    num_requests: int,
    prompt_tokens: Sequence[int] | np.ndarray,
    output_tokens: Sequence[int] | np.ndarray,
    *,
    ttft_slo_s: float = float("inf"),
    tpot_slo_s: float = float("inf"),
) -> list[EngineRequest]:
    """Poisson arrivals; lengths drawn with replacement from the given samples."""
    if rate_rps <= 0.0:
        raise ValueError("rate_rps must be > 0")
    arrivals = np.cumsum(rng.exponential(1.0 / rate_rps, num_requests))
    prompts = np.asarray(prompt_tokens, dtype=np.int64)
    outputs = np.asarray(output_tokens, dtype=np.int64)
    idx = rng.integers(0, len(prompts), num_requests)
    jdx = idx if len(prompts) == len(outputs) else rng.integers(0, len(outputs), num_requests)
    return [
        EngineRequest(
            i,
            float(arrivals[i]),
            int(prompts[idx[i]]),
            int(outputs[jdx[i]]),
            ttft_slo_s,
            tpot_slo_s,
        )
        for i in range(num_requests)
    ]


def lognormal_lengths(
    rng: np.random.Generator, mean: float, p99: float, size: int, *, max_tokens: int
) -> np.ndarray:
    """Token counts with a given mean and p99 (lognormal, as request lengths tend to be)."""
    if not 1.0 <= mean < p99:
        raise ValueError("need 1 <= mean < p99")
    z99 = 2.3263478740408408
    disc = z99 * z99 - 2.0 * np.log(p99 / mean)
    if disc < 0.0:
        raise ValueError(f"p99/mean = {p99 / mean:.1f} is too heavy-tailed for a lognormal")
    sigma = z99 - float(np.sqrt(disc))
    mu = np.log(mean) - sigma * sigma / 2.0
    values = np.rint(rng.lognormal(mu, sigma, size))
    return np.clip(values, 1, max_tokens).astype(np.int64)


def observed_shape(
    prompt_tokens: Sequence[int] | np.ndarray, output_tokens: Sequence[int] | np.ndarray
) -> WorkloadShape:
    """The shape as the planner sees requests of these lengths: means and p99s (what
    vLLM's token histograms give)."""
    prompts = np.asarray(prompt_tokens, dtype=float)
    outputs = np.asarray(output_tokens, dtype=float)
    return WorkloadShape(
        float(prompts.mean()),
        float(outputs.mean()),
        prompt_tokens_p99=float(np.percentile(prompts, 99)),
        output_tokens_p99=float(np.percentile(outputs, 99)),
    )
