"""Everything a cluster starts is stopped: on a failing test, and when the test process
itself died (its cluster is an orphan that the next start, or `cluster-down`, reaps)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tierscale_testbed import cluster as cluster_mod
from tierscale_testbed.cluster import Cluster, ClusterConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _port_open(server: str) -> bool:
    parts = urlsplit(server)
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 443)) == 0


def _assert_gone(pids: list[int], run_dir: Path) -> None:
    """Ports are held by these processes, so dead pids mean closed ports. (Probing the port
    afterwards is racy: a parallel session's new cluster may take the freed port at once.)"""
    assert pids, "kwokctl recorded no pids"
    assert not [p for p in pids if cluster_mod._pid_alive(p)]
    assert not run_dir.exists()


def _small() -> ClusterConfig:
    return ClusterConfig(gpu_nodes=1, gpus_per_node=1)


def test_failing_test_still_stops_every_process(cluster: Cluster) -> None:
    """Uses its own one-node cluster; `cluster` is requested only so the session's binaries
    check runs first."""
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="test failed"),
        cluster_mod.running_cluster(_small()) as small,
    ):
        pids.extend(cluster_mod._component_pids(small.run_dir))
        assert _port_open(small.server)
        raise RuntimeError("test failed")
    _assert_gone(pids, small.run_dir)


def test_orphan_of_a_dead_test_process_is_reaped(cluster: Cluster) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    small = cluster_mod.start_cluster(_small(), owner_pid=dead.pid)
    try:
        pids = cluster_mod._component_pids(small.run_dir)
        assert small.config.name in cluster_mod.reap_orphans()
        _assert_gone(pids, small.run_dir)
    finally:
        small.stop()
