"""pytest plugin: the tierscale operator on the testbed.

- ``tierscale_crds`` (session): the SLOTier and kopf peering CRDs from crds/, installed
  once (a later test's ``kubectl apply`` of the same files is a no-op).
- ``operators`` (function): a factory of ``OperatorProcess`` managing the test's
  namespace (``operators.start(**env_overrides)``); every process it started is stopped
  at teardown, and the first one is Prometheus' ``tierscale-operator`` target.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy
from tierscale_testbed.operator import OperatorProcess, testbed_settings
from tierscale_testbed.prometheus import TestbedPrometheus

REPO = Path(__file__).resolve().parents[2]
CRD_NAMES = (
    "slotiers.tierscale.dev",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
)


@pytest.fixture(scope="session")
def tierscale_crds(cluster: Cluster) -> tuple[str, ...]:
    cluster.kubectl("apply", "-f", str(REPO / "crds"))

    def established() -> bool | None:
        # Polled rather than `kubectl wait`, which errors out (instead of waiting) on a CRD
        # whose status has no conditions yet.
        for name in CRD_NAMES:
            conditions = cluster.get_json("crd", name).get("status", {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return None
        return True

    cluster.wait_for(established, 60, "the CRDs Established")
    return CRD_NAMES


class Operators:
    """Starts operators for one test's namespace; stops them all at the end."""

    def __init__(
        self,
        root: Path,
        cluster: Cluster,
        namespace: str,
        prometheus: TestbedPrometheus,
        envoy: TestbedEnvoy,
        kubeconfig: Path | None = None,
    ) -> None:
        self.root = root
        self.namespace = namespace
        self.prometheus = prometheus
        self.env = testbed_settings(kubeconfig or cluster.kubeconfig, namespace, prometheus, envoy)
        self.started: list[OperatorProcess] = []

    def create(self, name: str | None = None, **overrides: str) -> OperatorProcess:
        """A process not started yet (``.start()`` it)."""
        process = OperatorProcess(
            self.root, {**self.env, **overrides}, name or f"operator-{len(self.started)}"
        )
        self.started.append(process)
        if len(self.started) == 1:
            self.prometheus.set_operator_targets(
                [f"127.0.0.1:{process.port}"], {"namespace": self.namespace}
            )
        return process

    def start(self, name: str | None = None, **overrides: str) -> OperatorProcess:
        return self.create(name, **overrides).start()

    def stop_all(self, cluster: Cluster) -> None:
        for process in self.started:
            process.stop()
        self.prometheus.set_operator_targets([], {})
        # kopf's finalizer stays on SLOTiers the operator no longer runs for: drop it, or
        # the namespace would stay Terminating.
        names = cluster.kubectl(
            "get", "slotiers", "-n", self.namespace, "-o", "name", check=False
        ).stdout.split()
        for name in names:
            cluster.kubectl(
                "patch",
                name,
                "-n",
                self.namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )


@pytest.fixture
def operators(
    tierscale_crds: tuple[str, ...],
    cluster: Cluster,
    namespace: str,
    prometheus: TestbedPrometheus,
    envoy: TestbedEnvoy,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> Iterator[Operators]:
    """Operators run with the Helm chart's ServiceAccount (`pytest_chart`), never as admin."""
    handle = Operators(tmp_path, cluster, namespace, prometheus, envoy, operator_kubeconfig)
    try:
        yield handle
    finally:
        handle.stop_all(cluster)
