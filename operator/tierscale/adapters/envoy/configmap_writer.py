"""Publish a routing table into the ConfigMap that Envoy pods mount.

In a cluster Envoy runs with one ConfigMap mounted three times (one directory per xDS
type, each mount selecting one key with `items`); kubelet swaps each mount's `..data`
symlink atomically, which Envoy sees as a move and reloads. The table is validated by the
real Envoy binary before the patch, so a broken config never reaches the API server.
"""

from __future__ import annotations

from typing import Any

from tierscale.adapters.envoy import routing, validation, xds


class ConfigMapRoutingWriter:
    """`RoutingWriter` that merge-patches `data` of one ConfigMap."""

    def __init__(
        self,
        core_v1: Any,
        namespace: str,
        name: str,
        layout: xds.XdsLayout,
        settings: xds.ListenerSettings,
        envoy_binary: str = "envoy",
    ) -> None:
        """`core_v1` is a `kubernetes.client.CoreV1Api`; `layout` holds the in-pod paths."""
        self._core_v1 = core_v1
        self._namespace = namespace
        self._name = name
        self._layout = layout
        self._settings = settings
        self._envoy_binary = envoy_binary

    def apply(self, table: routing.RoutingTable) -> None:
        resources = xds.render(table, self._layout, self._settings)
        validation.validate(resources, self._envoy_binary)
        self._core_v1.patch_namespaced_config_map(
            self._name, self._namespace, {"data": resources.files()}
        )
