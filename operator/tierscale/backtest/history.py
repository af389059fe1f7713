"""Prometheus history for a backtest: each query once as a range query, read back per tick.

The Prometheus adapter evaluates every query at `time=now_s`; a range query with
`step` = the control interval evaluates the same expression at every tick time of the
range (that is what a range query is). `RangeTransport` is the adapter's `Transport`: the
first time it sees an expression it fetches it over the whole backtest (plus the rate
history the forecast looks back on), in chunks under Prometheus' point limit, and every
instant query at a tick time is answered from that matrix as the instant vector
Prometheus would have returned. So a backtest of T ticks makes one range request per
expression (per chunk) instead of 14 x T instant requests, and reads exactly the numbers
the live adapter would have read at those instants.

Replicas: Prometheus only knows them through what scrapes the cluster.
`replica_queries` gives two sources: kube-state-metrics (`kube_deployment_spec_replicas`,
`kube_deployment_status_replicas_ready`) in real clusters, or, without it, the number of
a Deployment's pods that export vLLM metrics (serving pods, as in the testbed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from tierscale.adapters.prometheus import client, parse, queries

ReplicaSource = Literal["auto", "kube-state-metrics", "vllm-pods"]
MAX_POINTS: Final = client.MAX_RANGE_POINTS - 1


def _at_key(at_s: float) -> int:
    """Tick times compared in milliseconds (Prometheus' resolution)."""
    return round(at_s * 1000)


@dataclass
class _Series:
    metric: Mapping[str, object]
    points: dict[int, tuple[float, str]]
    """ms time -> (time as returned, value string)."""


class RangeTransport:
    """`client.Transport` answering instant queries at grid times from one range query."""

    def __init__(
        self, inner: client.Transport, start_s: float, end_s: float, step_s: float
    ) -> None:
        if step_s <= 0.0 or end_s < start_s:
            raise ValueError("RangeTransport: need step > 0 and end >= start")
        self._inner = inner
        self.start_s = start_s
        self.end_s = end_s
        self.step_s = step_s
        self._cache: dict[str, list[_Series]] = {}
        self.range_requests = 0
        """Range requests sent to Prometheus (for the report)."""

    def grid(self) -> list[float]:
        n = int(math.floor((self.end_s - self.start_s) / self.step_s + 1e-9))
        return [self.start_s + i * self.step_s for i in range(n + 1)]

    def instant(self, promql: str, at_s: float, timeout_s: float) -> object:
        series = self._series(promql, timeout_s)
        key = _at_key(at_s)
        return [
            {"metric": dict(s.metric), "value": [s.points[key][0], s.points[key][1]]}
            for s in series
            if key in s.points
        ]

    def range(
        self, promql: str, start_s: float, end_s: float, step_s: float, timeout_s: float
    ) -> object:
        """The rate history: the cached points inside [start, end] when the grid matches."""
        if not math.isclose(step_s, self.step_s) or start_s < self.start_s - 1e-6:
            return self._inner.range(promql, start_s, end_s, step_s, timeout_s)
        lo, hi = _at_key(start_s), _at_key(end_s)
        out = []
        for s in self._series(promql, timeout_s):
            values = [list(p) for k, p in sorted(s.points.items()) if lo <= k <= hi]
            if values:
                out.append({"metric": dict(s.metric), "values": values})
        return out

    def has_series(self, promql: str, timeout_s: float) -> bool:
        return bool(self._series(promql, timeout_s))

    def _series(self, promql: str, timeout_s: float) -> list[_Series]:
        cached = self._cache.get(promql)
        if cached is not None:
            return cached
        by_labels: dict[tuple[tuple[str, str], ...], _Series] = {}
        chunk_s = MAX_POINTS * self.step_s
        start = self.start_s
        while start <= self.end_s + 1e-9:
            end = min(self.end_s, start + chunk_s)
            self.range_requests += 1
            result = self._inner.range(promql, start, end, self.step_s, timeout_s)
            if not isinstance(result, list):
                raise parse.ResponseError("range query did not return a list of series")
            for row in result:
                metric = row.get("metric") if isinstance(row, Mapping) else None
                values = row.get("values") if isinstance(row, Mapping) else None
                if not isinstance(metric, Mapping) or not isinstance(values, list):
                    raise parse.ResponseError(f"not a matrix row: {row!r:.200}")
                labels = tuple(sorted((str(k), str(v)) for k, v in metric.items()))
                series = by_labels.setdefault(labels, _Series(dict(metric), {}))
                for point in values:
                    at, value = point
                    series.points[_at_key(float(at))] = (float(at), str(value))
            start = end + self.step_s
        self._cache[promql] = list(by_labels.values())
        return self._cache[promql]


@dataclass(frozen=True, slots=True)
class ReplicaQueries:
    source: Literal["kube-state-metrics", "vllm-pods"]
    current: str
    ready: str


def replica_queries(pools: Sequence[tuple[str, str]], source: str) -> ReplicaQueries:
    """PromQL for (spec replicas, ready replicas) by (namespace, deployment) of `pools`."""
    if source == "kube-state-metrics":
        selector = queries.recorded_pool_selector(pools)
        return ReplicaQueries(
            "kube-state-metrics",
            f"max by (namespace, deployment) (kube_deployment_spec_replicas{selector})",
            f"max by (namespace, deployment) (kube_deployment_status_replicas_ready{selector})",
        )
    pods = (
        "count by (namespace, deployment) (label_replace(vllm:num_requests_running"
        f'{queries.pool_selector(pools)}, "deployment", "$1", "pod", '
        f'"{queries.DEPLOYMENT_FROM_POD_RE}"))'
    )
    return ReplicaQueries("vllm-pods", pods, pods)


def replicas_at(
    transport: RangeTransport, q: ReplicaQueries, at_s: float, timeout_s: float
) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """(namespace, deployment) -> (current, ready) at `at_s`; absent when not scraped."""
    labels = ("namespace", "deployment")
    current = parse.instant_vector(transport.instant(q.current, at_s, timeout_s), labels)
    ready = parse.instant_vector(transport.instant(q.ready, at_s, timeout_s), labels)
    return {
        (key[0], key[1]): (current.get(key), ready.get(key)) for key in set(current) | set(ready)
    }


def has_series(transport: RangeTransport, promql: str, timeout_s: float) -> bool:
    """Whether `promql` returns anything over the backtest (fetching it if needed)."""
    return transport.has_series(promql, timeout_s)
