"""The kwokctl configuration and fake GPU nodes of a testbed cluster.

Kept apart from process management so the rendered documents can be read and checked on
their own (``python -m tierscale_testbed.cluster render``) when a cluster misbehaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tierscale_testbed.versions import VERSIONS

STAGES_FILE = Path(__file__).parent / "kwok" / "stages.yaml"
AUDIT_POLICY_FILE = Path(__file__).parent / "kwok" / "audit-policy.yaml"
"""Requests made as a ServiceAccount are audited (`Cluster.audit_log`)."""

# kwokctl's default selector: kwok simulates only nodes carrying this annotation.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
COLD_START_ANNOTATION = "tierscale.dev/cold-start-seconds"
TERMINATION_ANNOTATION = "tierscale.dev/termination-seconds"
GPU_RESOURCE = "nvidia.com/gpu"


def kwokctl_configuration(binaries: dict[str, Path]) -> dict[str, Any]:
    """Every binary path is given explicitly: kwokctl would otherwise download them, which
    fails without internet access. Everything binds to loopback."""
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": {
            "runtime": "binary",
            "kubeVersion": VERSIONS.kubernetes,
            "kwokVersion": VERSIONS.kwok,
            "etcdVersion": VERSIONS.etcd,
            "bindAddress": "127.0.0.1",
            "kubeAuthorization": True,
            "kubeAdmission": True,
            "kubeApiserverBinary": str(binaries["kube-apiserver"]),
            "kubeControllerManagerBinary": str(binaries["kube-controller-manager"]),
            "kubeSchedulerBinary": str(binaries["kube-scheduler"]),
            "kubectlBinary": str(binaries["kubectl"]),
            "etcdBinary": str(binaries["etcd"]),
            "kwokControllerBinary": str(binaries["kwok"]),
            "kubeAuditPolicy": str(AUDIT_POLICY_FILE),
        },
    }


def stages(default_cold_start_s: float, default_termination_s: float) -> list[dict[str, Any]]:
    """The Stage documents with the cluster-wide default delays filled in."""
    defaults_ms = {
        "pod-ready": round(default_cold_start_s * 1000),
        "pod-delete": round(default_termination_s * 1000),
    }
    docs = [d for d in yaml.safe_load_all(STAGES_FILE.read_text()) if d]
    for doc in docs:
        name = doc["metadata"]["name"]
        if name in defaults_ms:
            doc["spec"]["delay"]["durationMilliseconds"] = defaults_ms[name]
    return docs


def gpu_node(name: str, gpus: int, gpu_product: str) -> dict[str, Any]:
    """A Node labelled like a real GPU node (NVIDIA GPU feature discovery labels), so that
    node selectors and affinities written for real clusters work unchanged."""
    resources = {
        "cpu": "96",
        "memory": "1Ti",
        "ephemeral-storage": "2Ti",
        "pods": "110",
        GPU_RESOURCE: str(gpus),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": gpu_product,
                "nvidia.com/gpu.count": str(gpus),
            },
        },
        "spec": {},
        "status": {"allocatable": dict(resources), "capacity": dict(resources)},
    }


def gpu_nodes(count: int, gpus: int, gpu_product: str) -> list[dict[str, Any]]:
    return [gpu_node(f"gpu-node-{i}", gpus, gpu_product) for i in range(count)]


def dump_all(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
