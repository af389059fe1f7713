"""A vLLM Deployment as the simulator recognises it: the labels it watches, one GPU.

The container never runs (kwok plays the kubelet), so its image and args only document
what a real pool would run; the labels and the cold-start annotation are what matter.
"""

from __future__ import annotations

from typing import Any

from tierscale_testbed.kwok_config import COLD_START_ANNOTATION, TERMINATION_ANNOTATION
from tierscale_testbed.simvllm import pod_watch

COMPONENT_LABEL, COMPONENT_VALUE = pod_watch.DEFAULT_SELECTOR.split("=")


def vllm_deployment(
    name: str,
    namespace: str,
    *,
    tier: str,
    replicas: int = 1,
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct",
    gpus: int = 1,
    cold_start_s: float | None = None,
    termination_s: float | None = None,
    sim_profile: str | None = None,
) -> dict[str, Any]:
    labels = {
        COMPONENT_LABEL: COMPONENT_VALUE,
        "app.kubernetes.io/name": name,
        pod_watch.TIER_LABEL: tier,
    }
    annotations = {pod_watch.MODEL_ANNOTATION: model_name}
    if cold_start_s is not None:
        annotations[COLD_START_ANNOTATION] = f"{cold_start_s:g}"
    if termination_s is not None:
        annotations[TERMINATION_ANNOTATION] = f"{termination_s:g}"
    if sim_profile is not None:
        annotations[pod_watch.PROFILE_ANNOTATION] = sim_profile
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": ["--model", model_name, "--port", "8000"],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "resources": {
                                "limits": {"nvidia.com/gpu": str(gpus)},
                                "requests": {"nvidia.com/gpu": str(gpus)},
                            },
                        }
                    ],
                },
            },
        },
    }
