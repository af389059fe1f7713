"""vLLM V1's Prometheus metrics: names and histogram bucket bounds, the one place they are written.

Facts about an external system (``vllm/v1/metrics/loggers.py``; see docs/design.md): the
Prometheus adapter queries these names, the fleet simulator fills histograms with these
bounds so the planner sees the same interpolation error a cluster gives it, and the
testbed's simulated vLLM server exports them.
"""

from __future__ import annotations

from typing import Final

TTFT_BUCKETS_S: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
"""`vllm:time_to_first_token_seconds`."""
ITL_BUCKETS_S: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
"""`vllm:inter_token_latency_seconds` and `vllm:request_time_per_output_token_seconds`."""
REQUEST_LATENCY_BUCKETS_S: Final = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
"""`vllm:e2e_request_latency_seconds` and the other per-request phase histograms."""

DEFAULT_MAX_MODEL_LEN: Final = 131072
"""Llama-3.1's context length: the token histograms' buckets stop at max_model_len."""

RUNNING: Final = "vllm:num_requests_running"
WAITING: Final = "vllm:num_requests_waiting"
KV_USAGE: Final = "vllm:kv_cache_usage_perc"
KV_USAGE_DEPRECATED: Final = "vllm:gpu_cache_usage_perc"
"""Deprecated in 0.9, hidden from 0.10: still read, for older vLLM."""
TTFT: Final = "vllm:time_to_first_token_seconds"
ITL: Final = "vllm:inter_token_latency_seconds"
ITL_DEPRECATED: Final = "vllm:time_per_output_token_seconds"
"""Deprecated in 0.11: the older name of the inter-token histogram."""
TPOT: Final = "vllm:request_time_per_output_token_seconds"
"""Per-request mean time per output token after the first: what an SLO's TPOT means."""
E2E: Final = "vllm:e2e_request_latency_seconds"
QUEUE: Final = "vllm:request_queue_time_seconds"
PREFILL: Final = "vllm:request_prefill_time_seconds"
DECODE: Final = "vllm:request_decode_time_seconds"
INFERENCE: Final = "vllm:request_inference_time_seconds"
PROMPT_TOKENS: Final = "vllm:prompt_tokens"
GENERATION_TOKENS: Final = "vllm:generation_tokens"
PREEMPTIONS: Final = "vllm:num_preemptions"
PREFIX_QUERIES: Final = "vllm:prefix_cache_queries"
PREFIX_HITS: Final = "vllm:prefix_cache_hits"
REQUEST_SUCCESS: Final = "vllm:request_success"
REQUEST_PROMPT_TOKENS: Final = "vllm:request_prompt_tokens"
REQUEST_GENERATION_TOKENS: Final = "vllm:request_generation_tokens"
CACHE_CONFIG: Final = "vllm:cache_config_info"
FINISHED_REASONS: Final = ("stop", "length", "abort")


def one_two_five_buckets(max_value: int) -> tuple[float, ...]:
    """vLLM's ``build_1_2_5_buckets``: 1, 2, 5, 10, 20, 50, ... up to ``max_value``."""
    out: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(out)
            out.append(float(value))
        exponent += 1
