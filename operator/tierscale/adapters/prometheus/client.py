"""`PrometheusMetrics`: the `MetricsPort` over Prometheus' HTTP API (`prometheus-api-client`).

Every query is evaluated at `time=now_s`, so the same adapter reads the present in the
operator and any past instant in a backtest. One query per input covers all tiers or all
pools of a read (`queries.pool_selector`): 13 instant queries and one range query per
read, whatever the number of tiers and pools; `inflight_by_pod` makes 2 more.

Failures never raise out of `read`: a refused connection, an HTTP error, a timeout, a body
that is not JSON or not the promised shape, an empty result or a NaN makes the fields of
that query None (`assemble` says which), and is counted in `errors_total` (exported by the
operator as `adapter_errors_total`) with the last few kept in `last_errors`. A failure to
connect or a timeout (an `OSError`: requests' exceptions are ones) ends the read's
querying: its remaining queries are counted as skipped, so an unreachable Prometheus costs
one timeout per read, not fifteen. Only a configuration that cannot work at all (a URL
that is not http(s)://host) raises `PortError`, at construction.

The HTTP seam is `Transport` (two methods returning the decoded `data.result`): the real one
wraps `PrometheusConnect`, whose `requests.Session` can itself be given (tests mount a
requests transport adapter on it); unit tests pass a scripted `Transport` that answers
JSON without any server.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from tierscale.adapters.prometheus import assemble, parse, queries
from tierscale.domain.metrics import Histogram, MetricInputs
from tierscale.domain.tiers import Tier
from tierscale.loop.naming import tier_stat_name
from tierscale.loop.ports import PortError

if TYPE_CHECKING:
    from tierscale.settings import Settings

MAX_RANGE_POINTS = 11_000
"""Prometheus refuses a range query with more points per series than this."""
LAST_ERRORS_KEPT = 20
HISTORY_INPUT = "tier_rate_history"
"""Name under which a failed rate-history range query is counted."""

_T = TypeVar("_T")


class Transport(Protocol):
    """The two calls the adapter makes; each returns the decoded `data.result` or raises."""

    def instant(self, promql: str, at_s: float, timeout_s: float) -> object: ...

    def range(
        self, promql: str, start_s: float, end_s: float, step_s: float, timeout_s: float
    ) -> object: ...


class ApiClientTransport:
    """`PrometheusConnect` with no retries (the next tick is the retry) and explicit times.

    `session` (a `requests.Session`) carries auth headers or TLS settings when a Prometheus
    needs them, and a transport adapter in tests.
    """

    def __init__(self, url: str, session: Any = None) -> None:
        # Typed Any: the library annotates `timeout: int` and `params: dict = None`, looser
        # than what it does (requests takes a float timeout).
        self._client: Any = PrometheusConnect(
            url=url.rstrip("/"),
            retry=Retry(total=0, raise_on_status=False),
            session=session,
        )

    def instant(self, promql: str, at_s: float, timeout_s: float) -> object:
        params = {"time": _api_time(at_s), "timeout": _server_timeout(timeout_s)}
        result: object = self._client.custom_query(promql, params=params, timeout=timeout_s)
        return result

    def range(
        self, promql: str, start_s: float, end_s: float, step_s: float, timeout_s: float
    ) -> object:
        # start/end in params override the library's rounding of its datetimes to seconds.
        params = {
            "start": _api_time(start_s),
            "end": _api_time(end_s),
            "timeout": _server_timeout(timeout_s),
        }
        result: object = self._client.custom_query_range(
            promql,
            start_time=datetime.fromtimestamp(start_s, tz=UTC),
            end_time=datetime.fromtimestamp(end_s, tz=UTC),
            step=queries.duration(step_s),
            params=params,
            timeout=timeout_s,
        )
        return result

    def close(self) -> None:
        self._client.close()


def _api_time(at_s: float) -> str:
    return f"{at_s:.3f}"


def _server_timeout(timeout_s: float) -> str:
    """Prometheus' own limit, a second past the client's: the client gives up first (a
    timeout, which ends the read) and the server stops the abandoned query soon after."""
    return queries.duration(timeout_s + 1.0)


@dataclass(frozen=True, slots=True)
class QueryError:
    """One failed query, for logs and the operator's status."""

    input_name: str
    reason: str
    at_s: float
    """The evaluation time (`now_s`) of the read."""


class PrometheusMetrics:
    """`MetricsPort` over a Prometheus that scrapes Envoy and the vLLM pods; see module doc."""

    def __init__(
        self,
        url: str,
        *,
        window_s: float = 60.0,
        stale_after_s: float = 90.0,
        rate_history_s: float = 900.0,
        history_step_s: float = 15.0,
        timeout_s: float = 5.0,
        use_recording_rules: bool = False,
        transport: Transport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PortError(
                f"prometheus_url {url!r} is not an http(s)://host[:port] URL "
                "(set TIERSCALE_PROMETHEUS_URL, e.g. http://prometheus-operated.monitoring:9090)"
            )
        for name, value in (
            ("window_s", window_s),
            ("stale_after_s", stale_after_s),
            ("history_step_s", history_step_s),
            ("timeout_s", timeout_s),
        ):
            if not math.isfinite(value) or value <= 0.0:
                raise PortError(f"Prometheus adapter: {name} must be > 0, got {value}")
        self.url = url
        self.window_s = window_s
        self.stale_after_s = stale_after_s
        self.rate_history_s = max(0.0, rate_history_s)
        self.history_step_s = history_step_s
        self.timeout_s = timeout_s
        self.use_recording_rules = use_recording_rules
        self._transport: Transport = transport or ApiClientTransport(url)
        self.errors_total = 0
        """Failed queries since start (every cause in `QueryError.reason`)."""
        self.errors_by_input: Counter[str] = Counter()
        self.last_errors: deque[QueryError] = deque(maxlen=LAST_ERRORS_KEPT)
        self.queries_total = 0
        """Queries sent (skipped ones are not)."""
        self._unreachable: str | None = None
        """Why the current read stopped querying (a connection failure or timeout)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: Transport | None = None
    ) -> PrometheusMetrics:
        """From `tierscale.settings.Settings` (URL, timeout, window, history, staleness)."""
        return cls(
            settings.prometheus_url,
            window_s=settings.metrics_window_s,
            stale_after_s=settings.stale_after_s,
            rate_history_s=settings.rate_history_s,
            history_step_s=settings.control_interval_s,
            timeout_s=settings.prometheus_timeout_s,
            use_recording_rules=settings.use_recording_rules,
            transport=transport,
        )

    # ------------------------------------------------------------------ MetricsPort

    def read(self, tiers: Sequence[Tier], now_s: float) -> MetricInputs:
        self._unreachable = None
        routes_by_tier = {t.key: tier_stat_name(t.namespace, t.name) for t in tiers}
        pools = sorted({(t.namespace, t.pool.deployment) for t in tiers})
        values: dict[str, Mapping[parse.Key, float | None]] = {}
        histograms: dict[str, Mapping[parse.Key, Histogram | None]] = {}
        history = None
        if routes_by_tier:
            routes = sorted(set(routes_by_tier.values()))
            values.update(self._read_tiers(routes, now_s))
            history = self._history(routes, now_s)
        if pools:
            pool_values, histograms = self._read_pools(pools, now_s)
            values.update(pool_values)
        answers = assemble.Answers(values=values, histograms=histograms, history=history)
        common = {"now_s": now_s, "window_s": self.window_s, "stale_after_s": self.stale_after_s}
        return MetricInputs(
            traffic_by_tier=assemble.traffic(routes_by_tier, answers, **common),
            signals_by_pool=assemble.signals(pools, answers, **common),
        )

    def inflight_by_pod(self, pool_key: str, now_s: float) -> Mapping[str, float]:
        """Running + waiting per pod of the pool now; pods with a stale or missing sample
        are left out, and any failure gives {} (the caller then has no preference)."""
        self._unreachable = None
        namespace, _, deployment = pool_key.partition("/")
        selector = queries.pool_selector([(namespace, deployment)])
        got = {
            query.name: self._run(
                query, query.render(selector, self.window_s), now_s, parse.instant_vector
            )
            for query in queries.POD_INPUTS
        }
        inflight = got[queries.POD_INFLIGHT.name]
        sampled = got[queries.POD_SAMPLED_AT.name]
        if inflight is None or sampled is None:
            return {}
        out: dict[str, float] = {}
        for (ns, pod), value in inflight.items():
            at = sampled.get((ns, pod))
            if ns != namespace or value is None or at is None:
                continue
            if not assemble.is_stale(at, now_s, self.stale_after_s):
                out[pod] = value
        return out

    # ------------------------------------------------------------------ queries

    def _read_tiers(
        self, routes: list[str], now_s: float
    ) -> dict[str, Mapping[parse.Key, float | None]]:
        selector = queries.route_selector(routes)
        expected = {(route,) for route in routes}
        out: dict[str, Mapping[parse.Key, float | None]] = {}
        for query in queries.TIER_INPUTS:
            promql = self._promql(query, selector, selector)
            got = self._run(query, promql, now_s, parse.instant_vector, expected)
            if got is not None:
                out[query.name] = got
        return out

    def _read_pools(
        self, pools: list[tuple[str, str]], now_s: float
    ) -> tuple[
        dict[str, Mapping[parse.Key, float | None]], dict[str, Mapping[parse.Key, Histogram | None]]
    ]:
        raw = queries.pool_selector(pools)
        recorded = queries.recorded_pool_selector(pools)
        expected = set(pools)
        values: dict[str, Mapping[parse.Key, float | None]] = {}
        histograms: dict[str, Mapping[parse.Key, Histogram | None]] = {}
        for query in queries.POOL_INPUTS:
            promql = self._promql(query, raw, recorded)
            if query.shape is queries.Shape.HISTOGRAM:
                got_h = self._run(query, promql, now_s, parse.histograms, expected)
                if got_h is not None:
                    histograms[query.name] = got_h
            else:
                got_v = self._run(query, promql, now_s, parse.instant_vector, expected)
                if got_v is not None:
                    values[query.name] = got_v
        return values, histograms

    def _promql(self, query: queries.Input, raw_selector: str, recorded_selector: str) -> str:
        if self.use_recording_rules:
            return query.render_recorded(recorded_selector, self.window_s)
        return query.render(raw_selector, self.window_s)

    def _run(
        self,
        query: queries.Input,
        promql: str,
        now_s: float,
        parser: Callable[[object, Sequence[str]], dict[parse.Key, _T]],
        expected: AbstractSet[parse.Key] | None = None,
    ) -> dict[parse.Key, _T] | None:
        """One instant query at `now_s`, parsed; None (and counted) if it failed. Groups
        not in `expected` are dropped; expected groups missing or NaN are counted once."""
        if self._unreachable is not None:
            self._failed(query.name, f"skipped: {self._unreachable}", now_s)
            return None
        self.queries_total += 1
        try:
            result = self._transport.instant(promql, now_s, self.timeout_s)
            parsed = parser(result, queries.GROUP_LABELS[query.scope])
        except Exception as error:  # any failure of one query: its fields are None
            self._failed(query.name, _describe(error), now_s)
            if _unreachable(error):
                self._unreachable = _describe(error)
            return None
        if expected is not None:
            parsed = {key: value for key, value in parsed.items() if key in expected}
        if not parsed:
            self._failed(query.name, "empty result", now_s)
            return None
        absent = sorted(expected - parsed.keys()) if expected is not None else []
        nan = sorted(key for key, value in parsed.items() if value is None)
        if absent or nan:
            self._failed(query.name, _partial(absent, nan), now_s)
        return parsed

    def _history(
        self, routes: list[str], now_s: float
    ) -> Mapping[parse.Key, assemble.History] | None:
        if self.rate_history_s <= 0.0:
            return None
        if self._unreachable is not None:
            self._failed(HISTORY_INPUT, f"skipped: {self._unreachable}", now_s)
            return None
        selector = queries.route_selector(routes)
        promql = self._promql(queries.TIER_RATE, selector, selector)
        step_s = max(self.history_step_s, self.rate_history_s / MAX_RANGE_POINTS)
        self.queries_total += 1
        try:
            result = self._transport.range(
                promql, now_s - self.rate_history_s, now_s, step_s, self.timeout_s
            )
            return parse.matrix(result, queries.GROUP_LABELS[queries.Scope.TIER])
        except Exception as error:  # history is optional: None, counted
            self._failed(HISTORY_INPUT, _describe(error), now_s)
            if _unreachable(error):
                self._unreachable = _describe(error)
            return None

    def _failed(self, input_name: str, reason: str, now_s: float) -> None:
        self.errors_total += 1
        self.errors_by_input[input_name] += 1
        self.last_errors.append(QueryError(input_name, reason, now_s))


def _partial(absent: list[parse.Key], nan: list[parse.Key]) -> str:
    parts = []
    if absent:
        parts.append(f"no series for {', '.join('/'.join(k) for k in absent[:5])}")
    if nan:
        parts.append(f"NaN or incomplete for {', '.join('/'.join(k) for k in nan[:5])}")
    return "; ".join(parts)


def _unreachable(error: Exception) -> bool:
    """A connection failure or timeout (requests' exceptions are `OSError`s), not a body
    that failed to decode (requests' `JSONDecodeError` is both)."""
    return isinstance(error, OSError) and not isinstance(error, ValueError)


def _describe(error: Exception) -> str:
    text = str(error).strip().replace("\n", " ")
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
