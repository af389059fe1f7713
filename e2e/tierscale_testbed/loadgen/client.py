"""One streaming OpenAI completion, timed on the client side.

TTFT is from just before the request is written to the first SSE chunk carrying a token;
TPOT is the mean gap between the first and the last token, (last - first) / (n - 1), the
definition vLLM's benchmarks and its ``request_time_per_output_token`` histogram use.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from tierscale_testbed.loadgen import workload

TIER_HEADER = "x-slo-tier"


class NotLoopbackError(ValueError):
    """The testbed's load generator only talks to this machine."""


def ensure_loopback(url: str) -> str:
    """Return ``url`` unchanged if its host is a loopback address, else refuse."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise NotLoopbackError(f"refusing non-loopback target {url!r}: only 127.0.0.1/::1")


@dataclass(frozen=True, slots=True)
class RequestResult:
    index: int
    tier: str
    status: int  # HTTP status; 0 when no response arrived
    ok: bool  # a 200 stream that ended with [DONE] and delivered every token
    output_tokens: int  # tokens received
    ttft_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    error: str = ""


def failed(
    spec: workload.RequestSpec, error: str, *, status: int = 0, tokens: int = 0
) -> RequestResult:
    return RequestResult(spec.index, spec.tier, status, False, tokens, None, None, None, error)


def _tokens_in(payload: str) -> int:
    """Tokens carried by one SSE data payload (0 for the usage-only chunk)."""
    chunk = json.loads(payload)
    count = 0
    for choice in chunk.get("choices") or []:
        text = choice.get("text")
        if text is None:
            text = (choice.get("delta") or {}).get("content")
        if text:
            count += 1
    return count


async def send(
    session: aiohttp.ClientSession,
    url: str,
    spec: workload.RequestSpec,
    *,
    model: str | None = None,
) -> RequestResult:
    """POST one streaming completion and time it; never raises for HTTP or I/O errors."""
    body: dict[str, object] = {
        "prompt": "Hello",
        "max_tokens": spec.output_tokens,
        "prompt_token_count": spec.prompt_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if model:
        body["model"] = model
    start = time.perf_counter()
    first: float | None = None
    last: float | None = None
    tokens = 0
    done = False
    try:
        async with session.post(url, json=body, headers={TIER_HEADER: spec.tier}) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200]
                return failed(spec, text, status=resp.status)
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data: "):
                    continue
                payload = line[len(b"data: ") :].decode()
                if payload == "[DONE]":
                    done = True
                    break
                n = _tokens_in(payload)
                if n:
                    now = time.perf_counter()
                    first = now if first is None else first
                    last = now
                    tokens += n
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        return failed(spec, f"{type(exc).__name__}: {exc}", tokens=tokens)
    end = time.perf_counter()
    ttft = None if first is None else first - start
    tpot = None
    if first is not None and last is not None and tokens > 1:
        tpot = (last - first) / (tokens - 1)
    ok = done and tokens == spec.output_tokens
    return RequestResult(spec.index, spec.tier, status, ok, tokens, ttft, tpot, end - start,
                         "" if ok else f"stream ended after {tokens} tokens")  # fmt: skip
