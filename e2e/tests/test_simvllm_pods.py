"""The simulated vLLM process serves exactly the Ready vLLM pods of the real API server,
with vLLM's API and metrics, and a deleted pod finishes its in-flight request before its
port closes (so a scale-down never cuts a stream)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.error
import urllib.request

import aiohttp
import pytest
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.simvllm import discovery, manifests
from tierscale_testbed.simvllm.process import SimVllmProcess

pytestmark = [pytest.mark.e2e]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_ready_pod_is_served_with_vllm_api_and_labels(
    cluster: Cluster, namespace: str, simvllm: SimVllmProcess
) -> None:
    name = f"gold-{secrets.token_hex(2)}"
    cluster.apply([manifests.vllm_deployment(name, namespace, tier="gold", cold_start_s=1)])
    (endpoint,) = simvllm.wait_for_serving(namespace, name, 1, timeout_s=45)

    status, body = _get(endpoint.port, "/v1/models")
    assert status == 200
    assert json.loads(body)["data"][0]["id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert _get(endpoint.port, "/health")[0] == 200
    status, text = _get(endpoint.port, "/metrics")
    assert 'vllm:num_requests_running{engine="0",model_name="meta-llama/' in text

    (target,) = [t for t in simvllm.targets() if t.pod == endpoint.pod]
    assert (target.namespace, target.deployment, target.tier) == (namespace, name, "gold")
    assert target.pod.startswith(f"{name}-")


async def _stream(port: int, output_tokens: int) -> tuple[list[bytes], float]:
    body = {"prompt": "x", "max_tokens": output_tokens, "stream": True, "prompt_token_count": 64}
    lines: list[bytes] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}/v1/completions", json=body) as resp,
    ):
        assert resp.status == 200
        started = time.monotonic()
        async for raw in resp.content:
            if raw.startswith(b"data: "):
                lines.append(raw.strip())
    return lines, time.monotonic() - started


async def _wait_health(port: int, status: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (await asyncio.to_thread(_get, port, "/health"))[0] != status:
        assert time.monotonic() < deadline, f"/health never returned {status}"
        await asyncio.sleep(0.1)


async def test_a_deleted_pod_finishes_its_in_flight_stream_then_closes(
    cluster: Cluster, namespace: str, simvllm: SimVllmProcess
) -> None:
    name = f"drain-{secrets.token_hex(2)}"
    deployment = manifests.vllm_deployment(
        name, namespace, tier="gold", cold_start_s=1, termination_s=1
    )
    cluster.apply([deployment])
    (endpoint,) = await asyncio.to_thread(simvllm.wait_for_serving, namespace, name, 1, 45.0)

    # ~1500 decode steps of ~6 ms: the stream outlives the pod object by several seconds.
    stream = asyncio.create_task(_stream(endpoint.port, 1500))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(
        cluster.kubectl, "delete", "pod", endpoint.pod, "-n", namespace, "--wait=false"
    )
    await _wait_health(endpoint.port, 503, timeout_s=15)
    assert not stream.done(), "the stream ended before the drain could be observed"
    pool = simvllm.pools()[f"{namespace}/{name}"]
    assert endpoint.pod not in [e.pod for e in pool.endpoints]  # Envoy gets nothing new

    lines, _ = await asyncio.wait_for(stream, timeout=40)
    assert lines[-1] == b"data: [DONE]"
    assert len(lines) == 1501

    def port_closed() -> bool:
        return all(t.pod != endpoint.pod for t in discovery.read_targets(simvllm.discovery_dir))

    deadline = time.monotonic() + 10
    while not port_closed():
        assert time.monotonic() < deadline, "drained pod still listed for scraping"
        await asyncio.sleep(0.1)
    with pytest.raises(urllib.error.URLError):
        _get(endpoint.port, "/health")
