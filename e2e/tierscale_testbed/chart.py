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
        """The chart's full name (`tierscale.fullname`: the release name when it already
        contains the chart's, else `<release>-tierscale`)."""
        return self.name if "tierscale" in self.name else f"{self.name}-tierscale"

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


def wait_for_crds(cluster: Cluster, timeout_s: float = 60.0) -> None:
    """Until every CRD of the chart is Established (objects of it can be created)."""
    names = [
        doc["metadata"]["name"]
        for path in sorted((CHART_DIR / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]

    def established() -> bool | None:
        for name in names:
            body = json.loads(cluster.kubectl("get", "crd", name, "-o", "json").stdout)
            conditions = body.get("status", {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return None
        return True

    cluster.wait_for(established, timeout_s, f"the chart's CRDs Established: {names}")


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
