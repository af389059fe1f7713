"""The Helm chart on the testbed, and credentials of its ServiceAccount for a local operator.

kwok runs no containers, so on the testbed the chart's Deployment stays at zero replicas
and the operator runs as a local process. It runs with the chart's ServiceAccount, never
as admin: `service_account_kubeconfig` asks the TokenRequest API for a token of that
ServiceAccount and writes a kubeconfig holding only that token (and the API server's CA),
so every request the operator makes is authorised by the chart's RBAC, and audited as
that ServiceAccount (`tierscale_testbed.audit`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tierscale_testbed.cluster import Cluster

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "tierscale"
TOKEN_SECONDS = 6 * 3600
"""Long enough for any test session or demo; the API server caps it at its own maximum."""


@dataclass(frozen=True, slots=True)
class Release:
    name: str
    namespace: str

    @property
    def service_account(self) -> str:
        return f"{self.name}-tierscale"

    @property
    def user(self) -> str:
        """How the API server (and its audit log) names the ServiceAccount."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def install(
    cluster: Cluster,
    name: str,
    namespace: str,
    values: Mapping[str, object],
    *,
    extra_args: Sequence[str] = (),
) -> Release:
    """`helm install` of the chart with its Deployment at zero replicas (see module doc)."""
    overrides = {"replicaCount": 0, **values}
    cluster.helm(
        "install",
        name,
        str(CHART_DIR),
        "-n",
        namespace,
        "--values",
        "-",
        *extra_args,
        input=yaml.safe_dump(_nested(overrides)),
    )
    return Release(name, namespace)


def uninstall(cluster: Cluster, release: Release) -> None:
    cluster.helm("uninstall", release.name, "-n", release.namespace, check=False)


def _nested(values: Mapping[str, object]) -> dict[str, object]:
    """{"settings.dryRun": True} -> {"settings": {"dryRun": True}}."""
    out: dict[str, object] = {}
    for dotted, value in values.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            assert isinstance(child, dict)
            node = child
        node[leaf] = value
    return out


def service_account_kubeconfig(cluster: Cluster, release: Release, path: Path) -> Path:
    """A kubeconfig authenticating as the release's ServiceAccount (TokenRequest API)."""
    token = cluster.kubectl(
        "create",
        "token",
        release.service_account,
        "-n",
        release.namespace,
        f"--duration={TOKEN_SECONDS}s",
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    (entry,) = admin["clusters"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": dict(entry["cluster"])}],
        "users": [{"name": release.service_account, "user": {"token": token}}],
        "contexts": [
            {
                "name": "operator",
                "context": {
                    "cluster": "testbed",
                    "user": release.service_account,
                    "namespace": release.namespace,
                },
            }
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path


def whoami(cluster: Cluster, kubeconfig: Path) -> str:
    """The user the API server sees for `kubeconfig` (SelfSubjectReview)."""
    done = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json")
    user: str = json.loads(done.stdout)["status"]["userInfo"]["username"]
    return user
