"""vLLM V1's Prometheus metrics for one simulated pod, rendered in the classic text format.

Names, types, labels and buckets follow ``vllm/v1/metrics/loggers.py`` (see
docs/reference.md). The exposition is the classic text format 0.0.4 on purpose:
prometheus-client's OpenMetrics writer turns ``vllm:x`` into ``vllm_x`` (client_python
#1177), and real vLLM's series keep their colons.

A custom collector over plain counters (rather than prometheus-client's metric objects)
keeps the registry per pod and emits no ``_created`` series, without touching the
library's process-wide switches.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

TTFT_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_LATENCY_BUCKETS_S = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"
KV_USAGE_DEPRECATED = "vllm:gpu_cache_usage_perc"
TTFT = "vllm:time_to_first_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
ITL_DEPRECATED = "vllm:time_per_output_token_seconds"
TPOT = "vllm:request_time_per_output_token_seconds"
E2E = "vllm:e2e_request_latency_seconds"
QUEUE = "vllm:request_queue_time_seconds"
PREFILL = "vllm:request_prefill_time_seconds"
DECODE = "vllm:request_decode_time_seconds"
INFERENCE = "vllm:request_inference_time_seconds"
PROMPT_TOKENS = "vllm:prompt_tokens"
GENERATION_TOKENS = "vllm:generation_tokens"
PREEMPTIONS = "vllm:num_preemptions"
PREFIX_QUERIES = "vllm:prefix_cache_queries"
PREFIX_HITS = "vllm:prefix_cache_hits"
REQUEST_SUCCESS = "vllm:request_success"
REQUEST_PROMPT_TOKENS = "vllm:request_prompt_tokens"
REQUEST_GENERATION_TOKENS = "vllm:request_generation_tokens"
CACHE_CONFIG = "vllm:cache_config_info"

FINISHED_REASONS = ("stop", "length", "abort")


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


@dataclass(slots=True)
class Histogram:
    """Cumulative-on-render histogram: per-bucket counts, a sum and a count."""

    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)  # one per bucket, plus +Inf last
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        # le is inclusive: a value equal to an edge belongs to that edge's bucket.
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for edge, n in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            running += n
            out.append((edge, float(running)))
        return out


@dataclass(frozen=True, slots=True)
class EngineGauges:
    running: int
    waiting: int
    kv_usage_frac: float


@dataclass(frozen=True, slots=True)
class CacheConfig:
    block_size: int
    num_gpu_blocks: int


_HISTOGRAM_HELP = {
    TTFT: ("Histogram of time to first token in seconds.", TTFT_BUCKETS_S),
    ITL: ("Histogram of inter-token latency in seconds.", ITL_BUCKETS_S),
    TPOT: ("Histogram of time_per_output_token_seconds per request.", ITL_BUCKETS_S),
    E2E: ("Histogram of e2e request latency in seconds.", REQUEST_LATENCY_BUCKETS_S),
    QUEUE: ("Histogram of time spent in WAITING phase for request.", REQUEST_LATENCY_BUCKETS_S),
    PREFILL: ("Histogram of time spent in PREFILL phase for request.", REQUEST_LATENCY_BUCKETS_S),
    DECODE: ("Histogram of time spent in DECODE phase for request.", REQUEST_LATENCY_BUCKETS_S),
    INFERENCE: (
        "Histogram of time spent in RUNNING phase for request.",
        REQUEST_LATENCY_BUCKETS_S,
    ),
}


class VllmMetrics:
    """The metric state of one engine, plus a prometheus-client collector over it.

    ``show_deprecated`` adds ``vllm:gpu_cache_usage_perc`` and
    ``vllm:time_per_output_token_seconds`` for dashboards built against vLLM < 0.10/0.11.
    """

    def __init__(
        self,
        *,
        model_name: str,
        engine: str = "0",
        max_model_len: int = 131072,
        cache: CacheConfig | None = None,
        show_deprecated: bool = False,
    ) -> None:
        self.labels = {"model_name": model_name, "engine": engine}
        self.show_deprecated = show_deprecated
        self.cache = cache or CacheConfig(block_size=16, num_gpu_blocks=0)
        self.histograms = {name: Histogram(b) for name, (_, b) in _HISTOGRAM_HELP.items()}
        token_buckets = one_two_five_buckets(max_model_len)
        self.histograms[REQUEST_PROMPT_TOKENS] = Histogram(token_buckets)
        self.histograms[REQUEST_GENERATION_TOKENS] = Histogram(token_buckets)
        self.counters = {
            PROMPT_TOKENS: 0.0,
            GENERATION_TOKENS: 0.0,
            PREEMPTIONS: 0.0,
            PREFIX_QUERIES: 0.0,
            PREFIX_HITS: 0.0,
        }
        self.success_by_reason = dict.fromkeys(FINISHED_REASONS, 0.0)
        self.gauges = EngineGauges(running=0, waiting=0, kv_usage_frac=0.0)

    # -- updates, called by the real-time engine -------------------------------------------
    def observe_first_token(self, ttft_s: float) -> None:
        self.histograms[TTFT].observe(ttft_s)
        self.counters[GENERATION_TOKENS] += 1

    def observe_next_token(self, itl_s: float) -> None:
        self.histograms[ITL].observe(itl_s)
        self.counters[GENERATION_TOKENS] += 1

    def observe_finished(
        self,
        *,
        prompt_tokens: int,
        output_tokens: int,
        queue_s: float,
        prefill_s: float,
        decode_s: float,
        e2e_s: float,
        finished_reason: str = "length",
    ) -> None:
        h = self.histograms
        h[E2E].observe(e2e_s)
        h[QUEUE].observe(queue_s)
        h[PREFILL].observe(prefill_s)
        h[DECODE].observe(decode_s)
        h[INFERENCE].observe(prefill_s + decode_s)
        h[REQUEST_PROMPT_TOKENS].observe(prompt_tokens)
        h[REQUEST_GENERATION_TOKENS].observe(output_tokens)
        if output_tokens > 1:
            h[TPOT].observe(decode_s / (output_tokens - 1))
        self.counters[PROMPT_TOKENS] += prompt_tokens
        self.success_by_reason[finished_reason] += 1

    def set_gauges(self, gauges: EngineGauges, *, preemptions_total: int | None = None) -> None:
        self.gauges = gauges
        if preemptions_total is not None:
            self.counters[PREEMPTIONS] = float(preemptions_total)

    # -- exposition ------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        names = list(self.labels)
        values = list(self.labels.values())
        for name, value, doc in (
            (RUNNING, self.gauges.running, "Number of requests in model execution batches."),
            (WAITING, self.gauges.waiting, "Number of requests waiting to be processed."),
            (KV_USAGE, self.gauges.kv_usage_frac, "KV-cache usage. 1 means 100 percent usage."),
        ):
            g = GaugeMetricFamily(name, doc, labels=names)
            g.add_metric(values, float(value))
            yield g
        if self.show_deprecated:
            g = GaugeMetricFamily(KV_USAGE_DEPRECATED, "GPU KV-cache usage.", labels=names)
            g.add_metric(values, self.gauges.kv_usage_frac)
            yield g
        for name, total in self.counters.items():
            c = CounterMetricFamily(name, f"Number of {name.split(':')[1]}.", labels=names)
            c.add_metric(values, total)
            yield c
        success = CounterMetricFamily(
            REQUEST_SUCCESS,
            "Count of successfully processed requests.",
            labels=[*names, "finished_reason"],
        )
        for reason, total in self.success_by_reason.items():
            success.add_metric([*values, reason], total)
        yield success
        yield from self._collect_histograms(names, values)
        info = GaugeMetricFamily(
            CACHE_CONFIG,
            "Information of the LLMEngine CacheConfig",
            labels=["block_size", "num_gpu_blocks"],
        )
        info.add_metric([str(self.cache.block_size), str(self.cache.num_gpu_blocks)], 1.0)
        yield info

    def _collect_histograms(self, names: list[str], values: list[str]) -> Iterator[Metric]:
        docs = {name: doc for name, (doc, _) in _HISTOGRAM_HELP.items()}
        docs[REQUEST_PROMPT_TOKENS] = "Number of prefill tokens processed."
        docs[REQUEST_GENERATION_TOKENS] = "Number of generation tokens processed."
        emitted = list(self.histograms.items())
        if self.show_deprecated:
            emitted.append((ITL_DEPRECATED, self.histograms[ITL]))
            docs[ITL_DEPRECATED] = "Histogram of time per output token in seconds (deprecated)."
        for name, hist in emitted:
            fam = HistogramMetricFamily(name, docs[name], labels=names)
            fam.add_metric(values, hist.cumulative(), sum_value=hist.sum)
            yield fam

    def render(self) -> bytes:
        """The classic text exposition (0.0.4) of this pod's metrics."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return exposition.generate_latest(registry)
