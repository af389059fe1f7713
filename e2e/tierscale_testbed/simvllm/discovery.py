"""The pod -> loopback port map that the simulated vLLM process publishes for the others.

In a real cluster Prometheus and Envoy find vLLM pods through the Kubernetes API. Here each
Ready pod is a port on 127.0.0.1 owned by one simulator process, so that process writes two
small files that play the role of service discovery:

* ``file_sd.json``: Prometheus ``file_sd_configs`` targets, one group per pod, carrying the
  labels a Kubernetes scrape would give (namespace, pod, deployment, tier, model_name).
  A draining pod stays listed until its port closes, as a terminating pod stays scrapeable.
* ``endpoints.json``: per pool (= owning Deployment, keyed ``namespace/deployment``) the
  endpoints that take new requests; a draining pod is removed at once, so Envoy stops
  sending to it.

Both are replaced atomically (write to a temp file, then rename), so a reader never sees
half a file and Prometheus' file watcher sees one change per update.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE_SD_NAME = "file_sd.json"
ENDPOINTS_NAME = "endpoints.json"
LOOPBACK_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ServedPod:
    """One simulated vLLM pod and where it listens."""

    namespace: str
    pod: str
    deployment: str  # owning Deployment, derived from the ReplicaSet owner
    tier: str  # value of the pod's tier label ("" when unlabelled)
    model_name: str
    port: int
    serving: bool  # False while draining: scrape it, but route nothing new to it
    host: str = LOOPBACK_HOST

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pool_key(self) -> str:
        return f"{self.namespace}/{self.deployment}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    pod: str


@dataclass(frozen=True, slots=True)
class Pool:
    """The endpoints of one Deployment that accept new requests."""

    namespace: str
    deployment: str
    tier: str
    model_name: str
    endpoints: tuple[Endpoint, ...]


def file_sd_groups(pods: Iterable[ServedPod]) -> list[dict[str, Any]]:
    """Prometheus file_sd target groups, sorted so equal states give equal files."""
    return [
        {
            "targets": [p.address],
            "labels": {
                "namespace": p.namespace,
                "pod": p.pod,
                "deployment": p.deployment,
                "tier": p.tier,
                "model_name": p.model_name,
            },
        }
        for p in sorted(pods, key=lambda p: (p.namespace, p.pod))
    ]


def pools(pods: Iterable[ServedPod]) -> dict[str, Pool]:
    """Serving endpoints grouped by ``namespace/deployment``; draining pods are left out."""
    by_key: dict[str, list[ServedPod]] = {}
    for p in pods:
        by_key.setdefault(p.pool_key, []).append(p)
    out: dict[str, Pool] = {}
    for key in sorted(by_key):
        members = sorted(by_key[key], key=lambda p: p.pod)
        first = members[0]
        out[key] = Pool(
            namespace=first.namespace,
            deployment=first.deployment,
            tier=first.tier,
            model_name=first.model_name,
            endpoints=tuple(Endpoint(p.host, p.port, p.pod) for p in members if p.serving),
        )
    return out


def _atomic_write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def write(directory: Path, pods: Iterable[ServedPod]) -> None:
    """Publish both files into ``directory``."""
    pod_list = list(pods)
    _atomic_write_json(directory / FILE_SD_NAME, file_sd_groups(pod_list))
    _atomic_write_json(
        directory / ENDPOINTS_NAME,
        {"pools": {k: asdict(v) for k, v in pools(pod_list).items()}},
    )


def _pool_from_json(raw: Mapping[str, Any]) -> Pool:
    return Pool(
        namespace=str(raw["namespace"]),
        deployment=str(raw["deployment"]),
        tier=str(raw["tier"]),
        model_name=str(raw["model_name"]),
        endpoints=tuple(
            Endpoint(str(e["host"]), int(e["port"]), str(e["pod"])) for e in raw["endpoints"]
        ),
    )


def read_pools(directory: Path) -> dict[str, Pool]:
    """Read ``endpoints.json``; an absent file means no pods yet."""
    path = directory / ENDPOINTS_NAME
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {key: _pool_from_json(v) for key, v in raw["pools"].items()}


def read_targets(directory: Path) -> list[ServedPod]:
    """Read ``file_sd.json`` back into pods (serving state is not in that file: True)."""
    path = directory / FILE_SD_NAME
    if not path.exists():
        return []
    out = []
    for group in json.loads(path.read_text()):
        labels = group["labels"]
        host, port = str(group["targets"][0]).rsplit(":", 1)
        out.append(
            ServedPod(
                namespace=labels["namespace"],
                pod=labels["pod"],
                deployment=labels["deployment"],
                tier=labels["tier"],
                model_name=labels["model_name"],
                port=int(port),
                serving=True,
                host=host,
            )
        )
    return out
