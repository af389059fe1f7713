"""pytest plugin: the operator runs with the Helm chart's ServiceAccount, and is audited.

- ``operator_audit`` (session): where the API server's audit log stood when the session
  started, and every chart release whose ServiceAccount an operator used since.
- ``operator_kubeconfig`` (function): installs the chart into the test's namespace (the
  operator's namespace: planner state there, SLOTiers watched there, kopf peering there,
  a Role on the Envoy routing ConfigMap in the data plane's namespace; the Deployment at
  zero replicas) and returns a kubeconfig holding a TokenRequest token of its
  ServiceAccount. The ``operators`` fixture starts every operator with it, so the
  closed-loop and fault tests run with the chart's grants only, never as admin.

``e2e/tests/test_rbac_audit.py`` reads the audit log at the end of the session (the
collection hook in ``e2e/conftest.py`` runs it last).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tierscale_testbed import audit, chart
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy


@dataclass
class OperatorAudit:
    log_path: Path
    start_offset: int
    releases: list[chart.Release] = field(default_factory=list)
    granted: set[audit.Grant] = field(default_factory=set)
    """What the installed releases' Roles and ClusterRoles grant (as rendered)."""

    def requests(self) -> list[audit.Request]:
        """Every audited request of the releases' ServiceAccounts in this session."""
        out: list[audit.Request] = []
        for release in self.releases:
            out += audit.read(self.log_path, release.user, offset=self.start_offset)
        return out


@pytest.fixture(scope="session")
def operator_audit(cluster: Cluster) -> OperatorAudit:
    return OperatorAudit(cluster.audit_log, audit.size(cluster.audit_log))


def chart_values(namespace: str, envoy: TestbedEnvoy) -> dict[str, object]:
    """The chart's values for an operator that manages one test namespace."""
    return {
        "settings.namespaces": [namespace],
        "settings.envoyConfigmap": f"{envoy.namespace}/{envoy.configmap_name}",
        "envoy.configMap.create": False,  # the testbed's Envoy fixture owns it
    }


@pytest.fixture
def operator_kubeconfig(
    cluster: Cluster,
    namespace: str,
    envoy: TestbedEnvoy,
    operator_audit: OperatorAudit,
    tmp_path: Path,
) -> Iterator[Path]:
    release = chart.install(
        cluster, f"ts-{secrets.token_hex(3)}", namespace, chart_values(namespace, envoy)
    )
    operator_audit.releases.append(release)
    manifest = cluster.helm("get", "manifest", release.name, "-n", namespace).stdout
    operator_audit.granted |= audit.rendered_grants(manifest)
    try:
        yield chart.service_account_kubeconfig(cluster, release, tmp_path / "operator.kubeconfig")
    finally:
        chart.uninstall(cluster, release)  # its ClusterRoles outlive the namespace otherwise
