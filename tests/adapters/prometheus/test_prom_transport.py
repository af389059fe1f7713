"""`ApiClientTransport` (prometheus-api-client over requests) with a transport adapter
mounted on its session instead of a server: what it sends, and that every HTTP-level
failure surfaces as an exception the adapter turns into None fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from tests.adapters.prometheus.prom_fakes import NOW_S, pool_sample, tier
from tierscale.adapters.prometheus.client import ApiClientTransport, PrometheusMetrics

URL = "http://prom.test:9090"
Handler = Callable[[requests.PreparedRequest], requests.Response]


class _Adapter(BaseAdapter):
    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        self.timeouts = kwargs.get("timeout")
        return self.handler(request)

    def close(self) -> None:
        pass


def _response(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    return response


def _ok(result: object) -> Handler:
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
    return lambda _: _response(200, body.encode())


def _transport(handler: Handler) -> tuple[ApiClientTransport, _Adapter]:
    session = requests.Session()
    adapter = _Adapter(handler)
    # A longer prefix than the client's own mount on URL, so requests picks this one.
    session.mount(f"{URL}/api/", adapter)
    return ApiClientTransport(URL, session=session), adapter


def test_instant_query_sends_the_evaluation_time_and_a_timeout() -> None:
    transport, adapter = _transport(_ok([pool_sample("ns", "a", 1)]))
    result = transport.instant("up", NOW_S + 0.25, 2.5)
    assert result == [pool_sample("ns", "a", 1)]
    (request,) = adapter.requests
    query = parse_qs(urlsplit(request.url or "").query)
    assert urlsplit(request.url or "").path == "/api/v1/query"
    assert query["query"] == ["up"]
    assert query["time"] == [f"{NOW_S + 0.25:.3f}"]
    assert query["timeout"] == ["3500ms"], "the server's limit is a second past the client's"
    assert adapter.timeouts == 2.5


def test_range_query_sends_exact_start_end_and_step() -> None:
    transport, adapter = _transport(_ok([]))
    transport.range("up", NOW_S - 900.5, NOW_S, 15.0, 5.0)
    query = parse_qs(urlsplit(adapter.requests[0].url or "").query)
    assert urlsplit(adapter.requests[0].url or "").path == "/api/v1/query_range"
    assert (query["start"], query["end"], query["step"]) == (
        [f"{NOW_S - 900.5:.3f}"],
        [f"{NOW_S:.3f}"],
        ["15s"],
    )
    assert query["timeout"] == ["6s"]


def _refused(_: requests.PreparedRequest) -> requests.Response:
    raise requests.ConnectionError("connection refused")


def _timeout(_: requests.PreparedRequest) -> requests.Response:
    raise requests.ReadTimeout("read timed out")


@pytest.mark.parametrize(
    ("handler", "reason", "sent"),
    [
        (_refused, "ConnectionError", 1),
        (_timeout, "ReadTimeout", 1),
        (lambda _: _response(503, b"overloaded"), "HTTP Status Code 503", 15),
        (lambda _: _response(422, b'{"status":"error"}'), "HTTP Status Code 422", 15),
        (lambda _: _response(200, b"<html>proxy</html>"), "JSONDecodeError", 15),
        (lambda _: _response(200, b'{"status":"success"}'), "KeyError", 15),
    ],
)
def test_every_http_failure_becomes_none_fields_and_an_error(
    handler: Handler, reason: str, sent: int
) -> None:
    """A connection failure or timeout ends the read (the rest is skipped); an answer that
    is an error or not the promised JSON fails its own query only."""
    transport, mounted = _transport(handler)
    adapter = PrometheusMetrics(URL, transport=transport)
    inputs = adapter.read([tier("gold", "gold-pool")], NOW_S)
    assert inputs.traffic_by_tier == {} and inputs.signals_by_pool == {}
    assert adapter.errors_total == 15
    assert adapter.queries_total == len(mounted.requests) == sent
    assert all(reason in error.reason for error in adapter.last_errors)
