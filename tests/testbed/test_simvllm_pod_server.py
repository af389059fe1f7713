"""One simulated pod over real loopback HTTP: API shapes, metrics, graceful drain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tierscale_testbed.simvllm import pod_server

from tierscale_predictor import profiles


@pytest.fixture
async def pod() -> AsyncIterator[pod_server.PodServer]:
    config = pod_server.PodConfig(
        model_name="llama", profile=profiles.load_profile("llama-3.1-8b-h100")
    )
    server = pod_server.PodServer(config)
    await server.start()
    yield server
    await server.stop()


async def _sse_payloads(resp: aiohttp.ClientResponse) -> list[str]:
    out = []
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            out.append(line[len("data: ") :])
    return out


async def test_streaming_completion_sends_each_token_then_usage_then_done(
    pod: pod_server.PodServer,
) -> None:
    body = {
        "prompt": "x",
        "max_tokens": 6,
        "stream": True,
        "prompt_token_count": 500,
        "stream_options": {"include_usage": True},
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"http://127.0.0.1:{pod.port}/v1/completions", json=body) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        payloads = await _sse_payloads(resp)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len(chunks) == 7
    assert [c["choices"][0]["finish_reason"] for c in chunks[:6]] == [None] * 5 + ["length"]
    usage = {"prompt_tokens": 500, "completion_tokens": 6, "total_tokens": 506}
    assert chunks[-1]["usage"] == usage


async def test_non_streaming_chat_and_models_and_metrics(pod: pod_server.PodServer) -> None:
    base = f"http://127.0.0.1:{pod.port}"
    async with aiohttp.ClientSession() as s:
        body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3}
        async with s.post(f"{base}/v1/chat/completions", json=body) as resp:
            reply = await resp.json()
        async with s.get(f"{base}/v1/models") as resp:
            models = await resp.json()
        await asyncio.sleep(0.05)  # let the engine loop account the finished request
        async with s.get(f"{base}/metrics") as resp:
            assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await resp.text()
        async with s.post(f"{base}/v1/completions", data=b"not json") as resp:
            assert resp.status == 400
    assert reply["choices"][0]["message"]["content"] == " tok" * 3
    assert models["data"][0]["id"] == "llama"
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    e2e = fams["vllm:e2e_request_latency_seconds"].samples
    count = [s for s in e2e if s.name.endswith("_count")]
    assert count[0].value == 1.0


async def test_drain_refuses_new_work_and_finishes_in_flight(pod: pod_server.PodServer) -> None:
    base = f"http://127.0.0.1:{pod.port}"
    body = {"prompt": "x", "max_tokens": 40, "stream": True, "prompt_token_count": 100}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/v1/completions", json=body) as resp:
            first = await resp.content.readline()
            assert first.startswith(b"data: ")
            drain = asyncio.create_task(pod.drain())
            await asyncio.sleep(0)
            async with s.get(f"{base}/health") as health:
                assert health.status == 503
            async with s.post(f"{base}/v1/completions", json=body) as refused:
                assert refused.status == 503
            rest = await _sse_payloads(resp)
        assert rest[-1] == "[DONE]"
        assert len(rest) == 40  # 39 more tokens + [DONE]
        await drain
        with pytest.raises(aiohttp.ClientConnectionError):
            await s.get(f"{base}/health")


async def test_a_client_that_leaves_mid_stream_does_not_hurt_the_pod(
    pod: pod_server.PodServer,
) -> None:
    base = f"http://127.0.0.1:{pod.port}"
    body = {"prompt": "x", "max_tokens": 200, "stream": True, "prompt_token_count": 100}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/v1/completions", json=body) as resp:
            await resp.content.readline()
        # the connection is closed now, with ~199 tokens unsent
        async with s.post(f"{base}/v1/completions", json={**body, "max_tokens": 2}) as resp:
            assert resp.status == 200
            assert (await _sse_payloads(resp))[-1] == "[DONE]"
    await asyncio.wait_for(pod.engine.wait_idle(), 10)
