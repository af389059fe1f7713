"""The fake GPU fleet behaves like a real one for the things tierscale relies on: scaling a
vLLM Deployment through its /scale subresource gives pods that turn Ready only after the
model's cold start, pods beyond GPU capacity stay Pending, and removed pods linger while
they drain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from kubernetes import client as k8s
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.kwok_config import (
    COLD_START_ANNOTATION,
    GPU_RESOURCE,
    TERMINATION_ANNOTATION,
)

pytestmark = pytest.mark.e2e

COLD_START_S = 4
TERMINATION_S = 5
APP = "vllm-sim"


def vllm_deployment(name: str, gpus_per_pod: int) -> dict[str, Any]:
    """Shaped like a real vLLM Deployment: GPU requests, a model-load cold start."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": APP}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {
                    "labels": {"app": APP},
                    "annotations": {
                        COLD_START_ANNOTATION: str(COLD_START_S),
                        TERMINATION_ANNOTATION: str(TERMINATION_S),
                    },
                },
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
                            "resources": {
                                "requests": {GPU_RESOURCE: str(gpus_per_pod)},
                                "limits": {GPU_RESOURCE: str(gpus_per_pod)},
                            },
                        }
                    ],
                },
            },
        },
    }


def _pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get_json("pods", "-n", namespace, "-l", f"app={APP}")[
        "items"
    ]
    return items


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in pod.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return None


def _is_ready(pod: dict[str, Any]) -> bool:
    cond = _condition(pod, "Ready")
    return cond is not None and cond["status"] == "True"


def _free_gpus(cluster: Cluster) -> int:
    """GPUs not requested by any live pod: other tests of the session may hold some."""
    used = 0
    for pod in cluster.get_json("pods", "--all-namespaces")["items"]:
        if not pod["spec"].get("nodeName") or pod["status"].get("phase") in (
            "Succeeded",
            "Failed",
        ):
            continue
        for container in pod["spec"]["containers"]:
            used += int(container.get("resources", {}).get("requests", {}).get(GPU_RESOURCE, 0))
    return cluster.total_gpus - used


def _terminating_pods(cluster: Cluster) -> list[str]:
    pods = cluster.get_json("pods", "--all-namespaces")["items"]
    return [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")]


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_gpu_nodes_advertise_gpus(cluster: Cluster) -> None:
    nodes = cluster.get_json("nodes", "-l", "nvidia.com/gpu.present=true")["items"]
    assert len(nodes) == cluster.config.gpu_nodes
    for node in nodes:
        assert node["status"]["allocatable"][GPU_RESOURCE] == str(cluster.config.gpus_per_node)
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == cluster.config.gpu_product
        assert _condition(node, "Ready") is not None


def test_scale_subresource_gives_ready_pods_after_cold_start_and_pending_beyond_gpus(
    cluster: Cluster, namespace: str
) -> None:
    # Pods of earlier tests still draining hold GPUs that would free up mid-test.
    cluster.wait_for(lambda: not _terminating_pods(cluster), 120, "no pod draining anywhere")
    gpus_per_pod = cluster.config.gpus_per_node // 2
    fit = _free_gpus(cluster) // gpus_per_pod
    assert fit >= 2, f"only {fit} pods of {gpus_per_pod} GPUs fit; other tests hold the GPUs"
    overflow = 2
    name = "llama-8b"
    cluster.apply([vllm_deployment(name, gpus_per_pod)], "-n", namespace)

    with cluster.api_client() as api:
        apps = k8s.AppsV1Api(api)
        apps.patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": fit + overflow}}
        )
        scale = apps.read_namespaced_deployment_scale(name, namespace)
        assert scale.spec is not None and scale.spec.replicas == fit + overflow

        def settled() -> list[dict[str, Any]] | None:
            pods = _pods(cluster, namespace)
            ready = [p for p in pods if _is_ready(p)]
            return pods if len(pods) == fit + overflow and len(ready) == fit else None

        pods = cluster.wait_for(settled, 120, f"{fit} Ready pods of {fit + overflow}")

        pending = [p for p in pods if not _is_ready(p)]
        assert len(pending) == overflow
        for pod in pending:
            assert pod["status"]["phase"] == "Pending"
            scheduled = _condition(pod, "PodScheduled")
            assert scheduled is not None and scheduled["reason"] == "Unschedulable"
            assert f"Insufficient {GPU_RESOURCE}" in scheduled["message"]
        for pod in pods:
            if _is_ready(pod):
                ready = _condition(pod, "Ready")
                assert ready is not None
                loading_s = _seconds(ready["lastTransitionTime"]) - _seconds(
                    pod["status"]["startTime"]
                )
                # Timestamps have 1 s resolution; the cold start is 4 s.
                assert loading_s >= COLD_START_S - 1, f"{pod['metadata']['name']} ready early"

        # Scale down through /scale: unschedulable pods go first, removed pods drain.
        apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": 1}})

        def terminating() -> bool:
            return any(p["metadata"].get("deletionTimestamp") for p in _pods(cluster, namespace))

        cluster.wait_for(terminating, 60, "scaled-down pods to start draining")

        def one_left() -> bool:
            pods = _pods(cluster, namespace)
            return len(pods) == 1 and _is_ready(pods[0])

        cluster.wait_for(one_left, 60, "one Ready pod after scale-down")
        deployment = apps.read_namespaced_deployment(name, namespace)
        assert deployment.status is not None and deployment.status.ready_replicas == 1
