"""The pod -> port files that Prometheus and Envoy read, and the pod parsing behind them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tierscale_testbed.simvllm import discovery, pod_watch


def _pod(
    name: str, port: int, *, serving: bool = True, deployment: str = "gold-pool"
) -> discovery.ServedPod:
    return discovery.ServedPod("ns", name, deployment, "gold", "llama", port, serving)


def test_file_sd_lists_every_open_port_with_kubernetes_like_labels(tmp_path: Path) -> None:
    discovery.write(tmp_path, [_pod("b", 2002, serving=False), _pod("a", 2001)])
    groups = json.loads((tmp_path / discovery.FILE_SD_NAME).read_text())
    assert [g["targets"] for g in groups] == [["127.0.0.1:2001"], ["127.0.0.1:2002"]]
    assert groups[0]["labels"] == {
        "namespace": "ns",
        "pod": "a",
        "deployment": "gold-pool",
        "tier": "gold",
        "model_name": "llama",
    }


def test_pools_leave_out_draining_pods(tmp_path: Path) -> None:
    pods = [_pod("a", 2001), _pod("b", 2002, serving=False), _pod("c", 2003, deployment="x")]
    discovery.write(tmp_path, pods)
    pools = discovery.read_pools(tmp_path)
    assert sorted(pools) == ["ns/gold-pool", "ns/x"]
    assert pools["ns/gold-pool"].endpoints == (discovery.Endpoint("127.0.0.1", 2001, "a"),)
    assert pools["ns/gold-pool"].tier == "gold"


def test_reading_before_the_first_write_gives_nothing(tmp_path: Path) -> None:
    assert discovery.read_pools(tmp_path) == {}
    assert discovery.read_targets(tmp_path) == []


def test_targets_round_trip(tmp_path: Path) -> None:
    discovery.write(tmp_path, [_pod("a", 2001)])
    assert discovery.read_targets(tmp_path) == [_pod("a", 2001)]


def _k8s_pod(**overrides: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {
            "uid": "u1",
            "namespace": "ns",
            "name": "gold-pool-7d9c8b5f4-x2x4z",
            "labels": {"pod-template-hash": "7d9c8b5f4", "tierscale.dev/tier": "gold"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "gold-pool-7d9c8b5f4"}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    pod["metadata"].update(overrides)
    return pod


def test_pod_view_finds_deployment_tier_and_readiness() -> None:
    view = pod_watch.pod_view(_k8s_pod())
    assert (view.deployment, view.tier, view.ready, view.terminating) == (
        "gold-pool",
        "gold",
        True,
        False,
    )
    assert view.should_serve


def test_a_terminating_pod_should_not_take_new_work() -> None:
    view = pod_watch.pod_view(_k8s_pod(deletionTimestamp="2026-01-01T00:00:00Z"))
    assert view.ready and view.terminating and not view.should_serve


def test_a_pod_without_ready_condition_is_not_ready() -> None:
    pod = _k8s_pod()
    pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert not pod_watch.pod_view(pod).should_serve
    pod["status"] = {"phase": "Pending"}
    assert not pod_watch.pod_view(pod).should_serve


def test_a_bare_pod_is_its_own_pool() -> None:
    pod = _k8s_pod(ownerReferences=None, name="lonely")
    assert pod_watch.owning_deployment(pod) == "lonely"


def test_a_pod_serves_with_the_engine_flags_its_container_declares() -> None:
    pod = _k8s_pod()
    pod["spec"] = {
        "containers": [
            {"name": "envoy", "args": ["--max-model-len", "99"]},
            {
                "name": "vllm",
                "command": ["sh", "-c", "vllm serve m --max-num-seqs 64 --max-model-len 8k"],
                "args": ["--max_num_batched_tokens=2048", "--max-model-len=16K"],
            },
        ]
    }
    view = pod_watch.pod_view(pod)
    assert (view.max_model_len, view.max_num_seqs, view.max_num_batched_tokens) == (
        16384,
        64,
        2048,
    )
    pod["spec"]["containers"][1] = {"name": "vllm", "args": ["--max-model-len", "auto"]}
    view = pod_watch.pod_view(pod)
    assert (view.max_model_len, view.max_num_seqs) == (None, None)
    assert pod_watch.engine_flags(_k8s_pod()) == {}
