"""In-memory stand-ins: a `RoutingWriter` and the slice of `CoreV1Api` the writers use.

`InMemoryRoutingWriter` renders every table (rendering is pure and cheap) so a table that
cannot become Envoy config fails here as in production; it does not run Envoy.
`InMemoryConfigMaps` lets `ConfigMapRoutingWriter` run without an API server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tierscale.adapters.envoy import routing, validation, xds

_LAYOUT = xds.XdsLayout(lds_dir="/fake/lds", cds_dir="/fake/cds", rds_dir="/fake/rds")


class InMemoryRoutingWriter:
    def __init__(self) -> None:
        self.applied: list[routing.RoutingTable] = []
        self.rejections: list[str] = []
        self.reject_next: str | None = None
        """Set to a reason to make the next `apply` fail like an Envoy rejection."""

    @property
    def current(self) -> routing.RoutingTable | None:
        """The last table that went live."""
        return self.applied[-1] if self.applied else None

    def apply(self, table: routing.RoutingTable) -> routing.Publication:
        xds.render(table, _LAYOUT, xds.ListenerSettings())
        if self.reject_next is not None:
            reason, self.reject_next = self.reject_next, None
            self.rejections.append(reason)
            raise validation.EnvoyConfigRejected(reason)
        self.applied.append(table)
        return routing.Publication.LIVE


@dataclass
class _Metadata:
    name: str
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str = "1"


@dataclass
class _ConfigMap:
    metadata: _Metadata
    data: dict[str, str] = field(default_factory=dict)


class InMemoryConfigMaps:
    """`read_namespaced_config_map` / `patch_namespaced_config_map` with merge-patch rules."""

    def __init__(self) -> None:
        self.maps: dict[tuple[str, str], _ConfigMap] = {}
        self.patches: list[dict[str, Any]] = []

    def create(self, namespace: str, name: str, data: dict[str, str] | None = None) -> None:
        self.maps[(namespace, name)] = _ConfigMap(_Metadata(name), dict(data or {}))

    def read_namespaced_config_map(self, name: str, namespace: str) -> _ConfigMap:
        return self.maps[(namespace, name)]

    def patch_namespaced_config_map(
        self, name: str, namespace: str, body: dict[str, Any]
    ) -> _ConfigMap:
        config_map = self.maps[(namespace, name)]
        self.patches.append(body)
        _merge(config_map.data, body.get("data", {}))
        _merge(config_map.metadata.annotations, body.get("metadata", {}).get("annotations", {}))
        config_map.metadata.resource_version = str(int(config_map.metadata.resource_version) + 1)
        return config_map


def _merge(target: dict[str, str], patch: dict[str, str | None]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
