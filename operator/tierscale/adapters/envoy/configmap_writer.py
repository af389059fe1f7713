"""Publish a routing table into the ConfigMap that Envoy pods mount.

In a cluster Envoy runs with one ConfigMap mounted three times (one directory per xDS
type, each mount selecting one key with `items`); kubelet swaps each mount's `..data`
symlink atomically, which Envoy sees as a move and reloads. The table is validated by the
real Envoy binary before any patch, so a broken config never reaches the API server.

Kubelet updates mounts independently and up to about a minute late, so new clusters are
published first (with the live routes) and the routes only after `settle_s` (see
`staging`). The staging time is kept in an annotation on the ConfigMap, so an operator
restart in between neither forgets nor skips the wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from tierscale.adapters.envoy import routing, staging, validation, xds

STAGED_AT_ANNOTATION = "tierscale.dev/clusters-staged-at"
"""Unix time (s) at which clusters for pending routes were published."""
DEFAULT_SETTLE_S = 90.0
"""Kubelet's ConfigMap propagation (sync period + cache TTL) plus cluster warm-up."""


class ConfigMapRoutingWriter:
    """`RoutingWriter` that merge-patches one ConfigMap's `data`."""

    def __init__(
        self,
        core_v1: Any,
        namespace: str,
        name: str,
        layout: xds.XdsLayout,
        settings: xds.ListenerSettings,
        envoy_binary: str = "envoy",
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`core_v1` is a `kubernetes.client.CoreV1Api`; `layout` holds the in-pod paths."""
        self._core_v1 = core_v1
        self._namespace = namespace
        self._name = name
        self._layout = layout
        self._settings = settings
        self._envoy_binary = envoy_binary
        self._settle_s = settle_s
        self._clock = clock

    def apply(self, table: routing.RoutingTable) -> routing.Publication:
        resources = xds.render(table, self._layout, self._settings)
        validation.validate(resources, self._envoy_binary)
        live = self._core_v1.read_namespaced_config_map(self._name, self._namespace)
        data: dict[str, str] = dict(live.data or {})
        annotations: dict[str, str] = dict((live.metadata and live.metadata.annotations) or {})
        live_cds = data.get(xds.CDS_FILE)
        now_s = self._clock()
        if xds.RDS_FILE in data and staging.added_clusters(live_cds, resources):
            self._patch(
                {xds.CDS_FILE: staging.interim_cds_file(live_cds, resources)},
                {STAGED_AT_ANNOTATION: f"{now_s:.3f}"},
            )
            return routing.Publication.STAGED
        staged_at_s = float(annotations.get(STAGED_AT_ANNOTATION, "-inf"))
        if not math.isfinite(staged_at_s):
            staged_at_s = -math.inf
        if now_s - staged_at_s < self._settle_s:
            return routing.Publication.STAGED
        self._patch(resources.files(), {STAGED_AT_ANNOTATION: None})
        return routing.Publication.LIVE

    def _patch(self, data: dict[str, str], annotations: dict[str, str | None]) -> None:
        body = {"metadata": {"annotations": annotations}, "data": data}
        self._core_v1.patch_namespaced_config_map(self._name, self._namespace, body)
