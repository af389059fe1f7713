"""kubectl and Helm from the version-keyed cache talk to the testbed cluster, the way the
operator's users and its Helm chart will."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.versions import VERSIONS

pytestmark = pytest.mark.e2e


def test_kubectl_and_server_are_the_pinned_version(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["clientVersion"]["gitVersion"] == VERSIONS.kubernetes
    assert version["serverVersion"]["gitVersion"] == VERSIONS.kubernetes


def test_rbac_is_enforced(cluster: Cluster, namespace: str) -> None:
    """Authorization is on: a ServiceAccount without bindings may not list pods."""
    sa = f"system:serviceaccount:{namespace}:default"
    done = cluster.kubectl(
        "auth", "can-i", "list", "pods", "-n", namespace, "--as", sa, check=False
    )
    assert done.stdout.strip() == "no"


def test_admission_is_enforced(cluster: Cluster, namespace: str) -> None:
    """Admission is on: a ResourceQuota of zero GPUs refuses a GPU pod at creation."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-gpus"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "0"}},
    }
    cluster.apply([quota], "-n", namespace)
    cluster.wait_for(
        lambda: (
            cluster.get_json("resourcequota", "no-gpus", "-n", namespace)
            .get("status", {})
            .get("hard")
        ),
        60,
        "the quota controller to compute the quota's status",
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "wants-a-gpu"},
        "spec": {
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "resources": {
                        "requests": {"nvidia.com/gpu": "1"},
                        "limits": {"nvidia.com/gpu": "1"},
                    },
                }
            ]
        },
    }
    text = yaml.safe_dump(pod)
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", check=False, input=text)
    assert done.returncode != 0
    assert "exceeded quota" in done.stderr


def _tiny_chart(root: Path) -> Path:
    chart = root / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "tiny", "version": "0.1.0"})
    )
    (chart / "values.yaml").write_text(yaml.safe_dump({"greeting": "hello"}))
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-tiny\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    return chart


def test_helm_installs_lists_and_uninstalls_a_chart(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    assert VERSIONS.helm in cluster.helm("version", "--short").stdout
    chart = _tiny_chart(tmp_path)
    cluster.helm("install", "demo", str(chart), "-n", namespace, "--set", "greeting=hi", "--wait")
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("demo", "deployed")]
    configmap = cluster.get_json("configmap", "demo-tiny", "-n", namespace)
    assert configmap["data"] == {"greeting": "hi"}
    cluster.helm("uninstall", "demo", "-n", namespace, "--wait")
    assert cluster.kubectl("get", "configmap", "demo-tiny", "-n", namespace, check=False).returncode
