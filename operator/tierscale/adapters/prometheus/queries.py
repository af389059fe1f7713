"""The PromQL behind every metric input, written once: the adapter queries it, the recording
rules (`rules.py`) record it, the docs table (docs/prometheus.md) describes it.

Each `Input` is a template with three placeholders: `{selector}` (label matchers, braces
included, or empty for a recording rule over every series), `{window}` (a PromQL duration)
and `{deployment_re}`. Histograms are read as bucket increases grouped by `le`, never as a
quantile: the percentile belongs to the tier (`Slo.percentile`) and is applied by the one
pure `Histogram.quantile` in `tierscale.domain.metrics`, as is the attainment estimate.

Selecting a pool's pods. Prometheus in a cluster (kube-prometheus PodMonitor or
ServiceMonitor) labels a vLLM series with the pod's `namespace` and `pod`, not with the
Deployment that owns it. A Deployment's pods are named `<deployment>-<pod-template-hash>-
<5 characters>` and neither of the two generated parts contains a `-`, so the anchored
regex `pod=~"<deployment>-[a-z0-9]+-[a-z0-9]{5}"` selects exactly that Deployment's pods
(not those of a Deployment named `<deployment>-x`), and `label_replace` recovers the
`deployment` label from the pod name for grouping. This needs no relabelling in the
user's Prometheus; the testbed's own `deployment` target label gets the same value.

Staleness. An instant query at `time=now` still returns a sample up to Prometheus'
lookback (5 minutes) old, so each scope has a heartbeat input: `timestamp()` of a raw
series that every scrape refreshes (`vllm:num_requests_running` for a pool, the route
counter for a tier), the oldest over the series behind the sum. The adapter compares it
with `stale_after_s`; the windowed inputs (`rate`, `increase`) only see samples inside
their window anyway.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tierscale.domain import vllm

DEPLOYMENT_FROM_POD_RE = "(.+)-[a-z0-9]+-[a-z0-9]{5}"
"""A Deployment's pod name -> `$1` = the Deployment (ReplicaSet hash, then random suffix)."""
POD_SUFFIX_RE = "-[a-z0-9]+-[a-z0-9]{5}"
"""What follows `<deployment>` in the name of each of its pods."""

ENVOY_ROUTE_REQUESTS = "envoy_vhost_route_upstream_rq_total"
"""Requests per route (`stat_prefix` = `naming.tier_stat_name`), counted as Envoy forwards
them upstream (a retried request counts once per attempt)."""

RULE_PREFIX = "tierscale:"


class Scope(StrEnum):
    """What one result row is about, and the labels that identify it."""

    TIER = "tier"
    POOL = "pool"
    POD = "pod"
    ENVOY_CLUSTER = "envoy_cluster"
    """Envoy's per-pool counters; recorded for dashboards and admission, read by no field."""


GROUP_LABELS: dict[Scope, tuple[str, ...]] = {
    Scope.TIER: ("envoy_route",),
    Scope.POOL: ("namespace", "deployment"),
    Scope.POD: ("namespace", "pod"),
    Scope.ENVOY_CLUSTER: ("envoy_cluster_name",),
}


class Shape(StrEnum):
    VALUE = "value"
    """One number per group."""
    HISTOGRAM = "histogram"
    """One number per group and `le` bound: bucket increases over the window."""


@dataclass(frozen=True, slots=True)
class Input:
    """One query: what it reads, how it is grouped, what it fills, what it is recorded as."""

    name: str
    scope: Scope
    shape: Shape
    expr: str
    """PromQL template: `{selector}`, `{window}`, `{deployment_re}`."""
    record: str
    """Recording-rule name template (`{window}` in windowed names)."""
    fills: str
    """The `MetricInputs` field it becomes (docs), or what it is for."""

    @property
    def windowed(self) -> bool:
        return "{window}" in self.expr

    @property
    def group_labels(self) -> tuple[str, ...]:
        labels = GROUP_LABELS[self.scope]
        return (*labels, "le") if self.shape is Shape.HISTOGRAM else labels

    def render(self, selector: str, window_s: float) -> str:
        """The raw PromQL for these series (`selector` from `pool_selector`, ...)."""
        return self.expr.format(
            selector=selector, window=duration(window_s), deployment_re=DEPLOYMENT_FROM_POD_RE
        )

    def record_name(self, window_s: float) -> str:
        return self.record.format(window=duration(window_s))

    def render_recorded(self, group_selector: str, window_s: float) -> str:
        """The PromQL that reads this input back from its recording rule."""
        return f"{self.record_name(window_s)}{group_selector}"


def _by_pool(aggregation: str, inner: str, *, le: bool = False) -> str:
    by = "namespace, deployment, le" if le else "namespace, deployment"
    return (
        f'{aggregation} by ({by}) (label_replace({inner}, "deployment", "$1", "pod", '
        '"{deployment_re}"))'
    )


def _increase_buckets(*names: str) -> str:
    """Bucket increases of the first of `names` a pod exports (`or`: per series, the left
    operand wins where both exist), summed per pool and `le`."""
    inner = " or ".join(f"increase({name}_bucket{{selector}}[{{window}}])" for name in names)
    return _by_pool("sum", inner, le=True)


def _increase_sum(*names: str) -> str:
    """Sum increases of the first of `names` a pod exports (as `_increase_buckets`, so a
    sum and its histogram's count come from the same series), summed per pool."""
    inner = " or ".join(f"increase({name}_sum{{selector}}[{{window}}])" for name in names)
    return _by_pool("sum", inner)


TIER_RATE = Input(
    "tier_rate",
    Scope.TIER,
    Shape.VALUE,
    f"sum by (envoy_route) (rate({ENVOY_ROUTE_REQUESTS}{{selector}}[{{window}}]))",
    "tierscale:tier_requests:rate{window}",
    "TierTraffic.rate_rps (instant) and .rate_history_rps (range query, step = control interval)",
)
TIER_SAMPLED_AT = Input(
    "tier_sampled_at",
    Scope.TIER,
    Shape.VALUE,
    f"min by (envoy_route) (timestamp({ENVOY_ROUTE_REQUESTS}{{selector}}))",
    "tierscale:tier_requests_sample_time_seconds:min",
    "TierTraffic.sampled_at_s; older than stale_after_s: rate_rps is None",
)
POOL_TTFT = Input(
    "pool_ttft",
    Scope.POOL,
    Shape.HISTOGRAM,
    _increase_buckets(vllm.TTFT),
    "tierscale:pool_ttft_seconds_bucket:increase{window}",
    "PoolSignals.ttft",
)
POOL_TPOT = Input(
    "pool_tpot",
    Scope.POOL,
    Shape.HISTOGRAM,
    _increase_buckets(vllm.TPOT, vllm.ITL, vllm.ITL_DEPRECATED),
    "tierscale:pool_tpot_seconds_bucket:increase{window}",
    "PoolSignals.tpot; falls back to the inter-token histogram (per token, so its tail is "
    "heavier: conservative) on vLLM without the per-request one",
)
POOL_TPOT_SUM = Input(
    "pool_tpot_sum",
    Scope.POOL,
    Shape.VALUE,
    _increase_sum(vllm.TPOT, vllm.ITL, vllm.ITL_DEPRECATED),
    "tierscale:pool_tpot_seconds_sum:increase{window}",
    "PoolSignals.tpot.sum_value (the mean TPOT that `calibrate_tpot_mean` learns from); "
    "from the same histogram as `pool_tpot` on every pod",
)
POOL_PROMPT_TOKENS = Input(
    "pool_prompt_tokens",
    Scope.POOL,
    Shape.HISTOGRAM,
    _increase_buckets(vllm.REQUEST_PROMPT_TOKENS),
    "tierscale:pool_prompt_tokens_bucket:increase{window}",
    "PoolSignals.prompt_tokens (buckets; +Inf = count)",
)
POOL_PROMPT_TOKENS_SUM = Input(
    "pool_prompt_tokens_sum",
    Scope.POOL,
    Shape.VALUE,
    _increase_sum(vllm.REQUEST_PROMPT_TOKENS),
    "tierscale:pool_prompt_tokens_sum:increase{window}",
    "PoolSignals.prompt_tokens.sum_value (for the mean)",
)
POOL_OUTPUT_TOKENS = Input(
    "pool_output_tokens",
    Scope.POOL,
    Shape.HISTOGRAM,
    _increase_buckets(vllm.REQUEST_GENERATION_TOKENS),
    "tierscale:pool_output_tokens_bucket:increase{window}",
    "PoolSignals.output_tokens (buckets; +Inf = count)",
)
POOL_OUTPUT_TOKENS_SUM = Input(
    "pool_output_tokens_sum",
    Scope.POOL,
    Shape.VALUE,
    _increase_sum(vllm.REQUEST_GENERATION_TOKENS),
    "tierscale:pool_output_tokens_sum:increase{window}",
    "PoolSignals.output_tokens.sum_value (for the mean)",
)
POOL_FINISHED_RATE = Input(
    "pool_finished_rate",
    Scope.POOL,
    Shape.VALUE,
    _by_pool("sum", f"rate({vllm.REQUEST_SUCCESS}_total{{selector}}[{{window}}])"),
    "tierscale:pool_requests:rate{window}",
    "PoolSignals.finished_rate_rps",
)
POOL_RUNNING = Input(
    "pool_running",
    Scope.POOL,
    Shape.VALUE,
    _by_pool("sum", f"{vllm.RUNNING}{{selector}}"),
    "tierscale:pool_requests_running:sum",
    "PoolSignals.running_requests",
)
POOL_WAITING = Input(
    "pool_waiting",
    Scope.POOL,
    Shape.VALUE,
    _by_pool("sum", f"{vllm.WAITING}{{selector}}"),
    "tierscale:pool_requests_waiting:sum",
    "PoolSignals.waiting_requests",
)
POOL_KV_USAGE = Input(
    "pool_kv_usage",
    Scope.POOL,
    Shape.VALUE,
    _by_pool("avg", f"{vllm.KV_USAGE}{{selector}} or {vllm.KV_USAGE_DEPRECATED}{{selector}}"),
    "tierscale:pool_kv_cache_usage:avg",
    "PoolSignals.kv_usage_frac (falls back to the pre-0.10 name)",
)
POOL_SAMPLED_AT = Input(
    "pool_sampled_at",
    Scope.POOL,
    Shape.VALUE,
    _by_pool("min", f"timestamp({vllm.RUNNING}{{selector}})"),
    "tierscale:pool_sample_time_seconds:min",
    "PoolSignals.sampled_at_s; older than stale_after_s: every field of the pool is None",
)
POD_INFLIGHT = Input(
    "pod_inflight",
    Scope.POD,
    Shape.VALUE,
    f"sum by (namespace, pod) ({vllm.RUNNING}{{selector}}) "
    f"+ sum by (namespace, pod) ({vllm.WAITING}{{selector}})",
    "tierscale:pod_requests_inflight:sum",
    "inflight_by_pod (which pods to remove first)",
)
POD_SAMPLED_AT = Input(
    "pod_sampled_at",
    Scope.POD,
    Shape.VALUE,
    f"min by (namespace, pod) (timestamp({vllm.RUNNING}{{selector}}))",
    "tierscale:pod_sample_time_seconds:min",
    "inflight_by_pod: pods with an older sample are left out",
)

TIER_INPUTS = (TIER_RATE, TIER_SAMPLED_AT)
POOL_INPUTS = (
    POOL_SAMPLED_AT,
    POOL_TTFT,
    POOL_TPOT,
    POOL_TPOT_SUM,
    POOL_PROMPT_TOKENS,
    POOL_PROMPT_TOKENS_SUM,
    POOL_OUTPUT_TOKENS,
    POOL_OUTPUT_TOKENS_SUM,
    POOL_FINISHED_RATE,
    POOL_RUNNING,
    POOL_WAITING,
    POOL_KV_USAGE,
)
POD_INPUTS = (POD_INFLIGHT, POD_SAMPLED_AT)
"""Read per call for one pool (`inflight_by_pod`), never recorded."""

ENVOY_EXTRAS = (
    Input(
        "tier_responses",
        Scope.TIER,
        Shape.VALUE,
        "sum by (envoy_route, envoy_response_code) "
        "(rate(envoy_vhost_route_upstream_rq{selector}[{window}]))",
        "tierscale:tier_responses:rate{window}",
        "dashboards: responses per tier and status code",
    ),
    Input(
        "cluster_requests",
        Scope.ENVOY_CLUSTER,
        Shape.VALUE,
        "sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_total{selector}[{window}]))",
        "tierscale:cluster_requests:rate{window}",
        "dashboards: requests per pool as Envoy sends them",
    ),
    Input(
        "cluster_admission_overflow",
        Scope.ENVOY_CLUSTER,
        Shape.VALUE,
        "sum by (envoy_cluster_name) "
        "(rate(envoy_cluster_upstream_rq_pending_overflow{selector}[{window}])) "
        "+ sum by (envoy_cluster_name) "
        "(rate(envoy_cluster_upstream_rq_active_overflow{selector}[{window}]))",
        "tierscale:cluster_admission_overflow:rate{window}",
        "admission-cap rejections per pool (a max_requests cap counts most as active "
        "overflow, docs/testbed.md)",
    ),
    Input(
        "cluster_requests_active",
        Scope.ENVOY_CLUSTER,
        Shape.VALUE,
        "sum by (envoy_cluster_name) (envoy_cluster_upstream_rq_active{selector})",
        "tierscale:cluster_requests_active:sum",
        "requests in flight per pool as Envoy sees them",
    ),
)
"""Recorded for dashboards and the admission work; no `MetricInputs` field reads them."""

RECORDED = (*TIER_INPUTS, *ENVOY_EXTRAS, *POOL_INPUTS)
"""Everything the recording rules hold, in file order."""


# ----------------------------------------------------------------------------- rendering


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(seconds: float) -> str:
    """A PromQL duration: whole minutes as `Nm`, whole seconds as `Ns`, else milliseconds."""
    if not math.isfinite(seconds) or seconds <= 0.0:
        raise ValueError(f"a PromQL window must be a positive number of seconds, got {seconds}")
    millis = round(seconds * 1000.0)
    if millis <= 0:
        raise ValueError(f"a PromQL window must be at least 1 ms, got {seconds} s")
    if millis % 60_000 == 0:
        return f"{millis // 60_000}m"
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"


def parse_duration(text: str) -> float:
    """`60s`, `1m`, `500ms`, `90` (seconds) -> seconds; ValueError says what is accepted."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"duration {text!r}: expected e.g. 60s, 1m, 500ms or 90 (seconds)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if seconds <= 0.0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def _escape_regex(name: str) -> str:
    r"""A Kubernetes name as an RE2 literal inside a PromQL string (`.` -> `\\.`)."""
    return re.sub(r"([^A-Za-z0-9_-])", r"\\\\\1", name)


def _alternatives(names: Iterable[str]) -> str:
    unique = sorted(set(names))
    joined = "|".join(_escape_regex(n) for n in unique)
    return joined if len(unique) == 1 else f"(?:{joined})"


def _matcher(label: str, names: Iterable[str]) -> str:
    unique = sorted(set(names))
    if len(unique) == 1:
        return f'{label}="{unique[0]}"'
    return f'{label}=~"{_alternatives(unique)}"'


def deployment_of(pod: str) -> str | None:
    """The Deployment a pod name belongs to, as `label_replace` derives it (None: not a
    Deployment's pod name)."""
    match = re.fullmatch(DEPLOYMENT_FROM_POD_RE, pod)
    return match.group(1) if match else None


def pool_selector(pools: Sequence[tuple[str, str]]) -> str:
    """Label matchers for the pods of these `(namespace, deployment)` pools.

    One selector for all pools (one query per input, whatever their number): a namespace
    and a Deployment of two different pools also match each other's pods, which group
    under a pool nobody asked for and are dropped by the reader.
    """
    if not pools:
        raise ValueError("pool_selector needs at least one pool")
    namespaces = _matcher("namespace", (ns for ns, _ in pools))
    deployments = _alternatives(dep for _, dep in pools)
    return f'{{{namespaces},pod=~"{deployments}{POD_SUFFIX_RE}"}}'


def recorded_pool_selector(pools: Sequence[tuple[str, str]]) -> str:
    """The same pools in the recorded series (already grouped by namespace, deployment)."""
    if not pools:
        raise ValueError("recorded_pool_selector needs at least one pool")
    namespaces = _matcher("namespace", (ns for ns, _ in pools))
    deployments = _matcher("deployment", (dep for _, dep in pools))
    return f"{{{namespaces},{deployments}}}"


def route_selector(routes: Sequence[str]) -> str:
    """Label matchers for Envoy's counters of these routes (`naming.tier_stat_name`)."""
    if not routes:
        raise ValueError("route_selector needs at least one route")
    return f"{{{_matcher('envoy_route', routes)}}}"
