"""Publish a routing table into the ConfigMap that Envoy pods mount.

In a cluster Envoy runs with one ConfigMap mounted three times (one directory per xDS
type, each mount selecting one key with `items`); kubelet swaps each mount's `..data`
symlink atomically, which Envoy sees as a move and reloads. The table is validated by the
real Envoy binary before any patch, so a broken config never reaches the API server.

Kubelet updates mounts independently and up to about a minute late, so new clusters are
published first (with the live routes) and the routes only after `settle_s` (see
`staging`). The staging time is kept in an annotation on the ConfigMap, so an operator
restart in between neither forgets nor skips the wait.

The operator decides one model group at a time, while Envoy serves every group from one
table: `apply_group` replaces one group's routes and clusters and keeps the others'. What
each group owns is kept in the ConfigMap itself (key `ROUTING_STATE_KEY`, which Envoy's
mounts do not select), so a restarted operator, or its standby replica, merges into what
is live instead of dropping the groups it has not decided yet. Every patch carries the
resourceVersion it read: two writers can never interleave a read-modify-write.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from tierscale import records
from tierscale.adapters.envoy import routing, staging, validation, xds
from tierscale.adapters.envoy.intent_routing import GroupRouting

STAGED_AT_ANNOTATION = "tierscale.dev/clusters-staged-at"
"""Unix time (s) at which clusters for pending routes were published."""
DEFAULT_SETTLE_S = 90.0
"""Kubelet's ConfigMap propagation (sync period + cache TTL) plus cluster warm-up."""
ROUTING_STATE_KEY: Final = "tierscale-routing.json"
"""ConfigMap key holding each model group's routes and pools (not mounted by Envoy)."""
ROUTING_STATE_VERSION: Final = 1


class RoutingStateUnreadable(ValueError):
    """The ConfigMap's routing state is not what this tierscale writes."""


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

    @property
    def where(self) -> str:
        return f"ConfigMap {self._namespace}/{self._name}"

    def apply(self, table: routing.RoutingTable) -> routing.Publication:
        """Publish `table` as the whole routing (every group's state is dropped)."""
        live = self._core_v1.read_namespaced_config_map(self._name, self._namespace)
        publication = self._publish(live, table, {ROUTING_STATE_KEY: None}, force=True)
        return routing.Publication.LIVE if publication is None else publication

    def apply_group(
        self, group: str, owned: GroupRouting, live_groups: Collection[str] | None = None
    ) -> routing.Publication | None:
        """Replace `group`'s routes and clusters, keep every other group's; None when the
        live config already is exactly that (nothing validated, nothing written).

        `live_groups`: the groups that still exist; stored groups outside it (their
        SLOTiers were deleted) are dropped. None keeps every stored group.
        """
        live = self._core_v1.read_namespaced_config_map(self._name, self._namespace)
        stored = load_routing_state(dict(live.data or {}).get(ROUTING_STATE_KEY))
        keep = set(stored) if live_groups is None else set(stored) & set(live_groups)
        groups = {g: r for g, r in stored.items() if g in keep and g != group}
        groups[group] = owned
        state_text = dump_routing_state(groups)
        return self._publish(live, merged_table(groups), {ROUTING_STATE_KEY: state_text})

    def _publish(
        self,
        live: Any,
        table: routing.RoutingTable,
        extra: Mapping[str, str | None],
        force: bool = False,
    ) -> routing.Publication | None:
        resources = xds.render(table, self._layout, self._settings)
        files = resources.files()
        data: dict[str, str] = dict(live.data or {})
        annotations: dict[str, str] = dict((live.metadata and live.metadata.annotations) or {})
        version = live.metadata.resource_version if live.metadata is not None else None
        wanted = {**files, **{k: v for k, v in extra.items() if v is not None}}
        if not force and all(data.get(k) == v for k, v in wanted.items()):
            return None
        validation.validate(resources, self._envoy_binary)
        live_cds = data.get(xds.CDS_FILE)
        now_s = self._clock()
        if xds.RDS_FILE in data and staging.added_clusters(live_cds, resources):
            self._patch(
                {xds.CDS_FILE: staging.interim_cds_file(live_cds, resources)},
                {STAGED_AT_ANNOTATION: f"{now_s:.3f}"},
                version,
            )
            return routing.Publication.STAGED
        staged_at_s = float(annotations.get(STAGED_AT_ANNOTATION, "-inf"))
        if not math.isfinite(staged_at_s):
            staged_at_s = -math.inf
        if now_s - staged_at_s < self._settle_s:
            return routing.Publication.STAGED
        self._patch({**files, **extra}, {STAGED_AT_ANNOTATION: None}, version)
        return routing.Publication.LIVE

    def _patch(
        self,
        data: Mapping[str, str | None],
        annotations: dict[str, str | None],
        resource_version: str | None,
    ) -> None:
        metadata: dict[str, Any] = {"annotations": annotations}
        if resource_version is not None:
            # A precondition: the API server answers 409 if anyone wrote in between.
            metadata["resourceVersion"] = resource_version
        body = {"metadata": metadata, "data": dict(data)}
        self._core_v1.patch_namespaced_config_map(self._name, self._namespace, body)


def merged_table(groups: Mapping[str, GroupRouting]) -> routing.RoutingTable:
    """One table from every group's part (groups in name order; a pool named by two groups
    keeps the later group's caps)."""
    routes: list[routing.TierRoute] = []
    pools: dict[str, routing.PoolCluster] = {}
    default: str | None = None
    for group in sorted(groups):
        part = groups[group]
        routes.extend(part.routes)
        pools.update({p.name: p for p in part.pools})
        default = default or part.default_route
    return routing.RoutingTable(
        tiers=tuple(routes), pools=tuple(pools[n] for n in sorted(pools)), default_tier=default
    )


def dump_routing_state(groups: Mapping[str, GroupRouting]) -> str:
    body = {
        "schema_version": ROUTING_STATE_VERSION,
        "groups": {g: records.to_jsonable(groups[g]) for g in sorted(groups)},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def load_routing_state(text: str | None) -> dict[str, GroupRouting]:
    """Group -> its routing, from what `dump_routing_state` wrote (None or "" -> {})."""
    if not text:
        return {}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise RoutingStateUnreadable(f"{ROUTING_STATE_KEY}: not JSON: {err.msg}") from err
    if not isinstance(body, dict) or body.get("schema_version") != ROUTING_STATE_VERSION:
        raise RoutingStateUnreadable(
            f"{ROUTING_STATE_KEY}: schema version {body.get('schema_version')!r} "
            f"(this tierscale reads {ROUTING_STATE_VERSION})"
            if isinstance(body, dict)
            else f"{ROUTING_STATE_KEY}: not an object"
        )
    try:
        return {
            str(g): records.from_jsonable(GroupRouting, part)
            for g, part in (body.get("groups") or {}).items()
        }
    except records.RecordError as err:
        raise RoutingStateUnreadable(f"{ROUTING_STATE_KEY}: {err}") from err
