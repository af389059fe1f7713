"""In-memory stand-ins: a `RouterPort`, a `RoutingWriter` and the slice of `CoreV1Api` the
writers use.

`FakeRouter` is the `RouterPort` for unit tests of the loop: it records every intent and
can refuse the next one (`reject_next`) or fail like an unreachable API server
(`fail_next`). `InMemoryRoutingWriter` renders every table (rendering is pure and cheap)
so a table that cannot become Envoy config fails here as in production; it does not run
Envoy. `InMemoryConfigMaps` lets `ConfigMapRoutingWriter` run without an API server,
with the API server's resourceVersion precondition on patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from tierscale.adapters.envoy import intent_routing, routing, validation, xds
from tierscale.domain.tiers import Tier
from tierscale.loop.actions import RoutingIntent
from tierscale.loop.ports import PortError, RouteOutcome, RoutesRejected

_LAYOUT = xds.XdsLayout(lds_dir="/fake/lds", cds_dir="/fake/cds", rds_dir="/fake/rds")


class FakeRouter:
    """`RouterPort` in memory: the intents it was given, by model group, in order."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, RoutingIntent]] = []
        self.live: dict[str, RoutingIntent] = {}
        """model group -> the last intent that went live."""
        self.reject_next: str | None = None
        self.fail_next: str | None = None

    def apply(self, routing_intent: RoutingIntent, tiers: Sequence[Tier]) -> RouteOutcome:
        group = tiers[0].model if tiers else ""
        # Building the Envoy table checks the intent exactly as the real router does.
        intent_routing.group_routing(routing_intent, tiers, intent_routing.eds_endpoints("/x"))
        if self.fail_next is not None:
            reason, self.fail_next = self.fail_next, None
            raise PortError(reason)
        if self.reject_next is not None:
            reason, self.reject_next = self.reject_next, None
            raise RoutesRejected(f"Envoy rejected the routing config: {reason}")
        self.applied.append((group, routing_intent))
        if self.live.get(group) == routing_intent:
            return RouteOutcome.UNCHANGED
        self.live[group] = routing_intent
        return RouteOutcome.PUBLISHED


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
        expected = body.get("metadata", {}).get("resourceVersion")
        if expected is not None and expected != config_map.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
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
