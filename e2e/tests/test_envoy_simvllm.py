"""Envoy's pools lead to the simulated vLLM pods that are Ready, and follow them.

The route uses an EDS file per pool, the testbed's stand-in for a headless Service: the
endpoint sync rewrites it from the simulator's endpoints.json whenever a pod starts or
drains, with no change to the routing ConfigMap.
"""

from __future__ import annotations

import http.client
import json
import secrets

import pytest
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy, wait_until
from tierscale_testbed.simvllm import manifests
from tierscale_testbed.simvllm.process import SimVllmProcess

from tierscale.adapters.envoy import routing

pytestmark = [pytest.mark.e2e]


def _completion(envoy: TestbedEnvoy, tier: str, stream: bool) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", envoy.settings.port, timeout=30)
    try:
        body = {"model": "m", "prompt": "hello " * 20, "max_tokens": 8, "stream": stream}
        connection.request(
            "POST",
            "/v1/completions",
            body=json.dumps(body),
            headers={"x-slo-tier": tier, "content-type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_requests_reach_ready_simulated_pods_and_follow_a_scale_up(
    cluster: Cluster, namespace: str, simvllm: SimVllmProcess, envoy: TestbedEnvoy
) -> None:
    deployment = f"vllm-{secrets.token_hex(2)}"
    cluster.apply([manifests.vllm_deployment(deployment, namespace, tier="gold", cold_start_s=1)])
    simvllm.wait_for_serving(namespace, deployment, 1)
    pool = routing.cluster_name(namespace, deployment)
    envoy.apply(
        routing.RoutingTable(
            tiers=(routing.TierRoute("gold", "x-slo-tier", "gold", {pool: 1000}),),
            pools=(envoy.pool(namespace, deployment),),
        )
    )
    wait_until(lambda: envoy.process.host_count(pool) == 1 or None, 10, "one endpoint in Envoy")

    status, body = _completion(envoy, "gold", stream=False)
    assert status == 200, body
    assert json.loads(body)["choices"][0]["text"]
    status, body = _completion(envoy, "gold", stream=True)
    assert status == 200, body
    assert body.rstrip().endswith("data: [DONE]")

    cluster.kubectl("scale", "deployment", deployment, "-n", namespace, "--replicas=2")
    simvllm.wait_for_serving(namespace, deployment, 2)
    wait_until(lambda: envoy.process.host_count(pool) == 2 or None, 10, "two endpoints in Envoy")
