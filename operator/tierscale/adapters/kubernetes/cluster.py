"""`KubeCluster`: the `ClusterPort` over a real API server (the official `kubernetes` client).

Synchronous on purpose: the operator runs each tick in a worker thread off kopf's event
loop, so a slow API call delays one tick and never kopf's watches. kopf's own API access
is not used: kopf offers no public general-purpose client (it patches the object a
handler was called for, through the handler's `patch`), while tierscale reads and writes
Deployments' `/scale`, pods, HPAs, ScaledObjects, nodes, Events and ConfigMaps, with a
field manager and resourceVersion preconditions on each call.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from tierscale.adapters.kubernetes.api_calls import call_json
from tierscale.adapters.kubernetes.gpus import allocatable_gpus
from tierscale.adapters.kubernetes.pools import KEDA_RECHECK_S, PoolReader
from tierscale.adapters.kubernetes.scaler import Scaler
from tierscale.adapters.kubernetes.slotiers import SlotierWriter
from tierscale.domain.tiers import Tier
from tierscale.loop.actions import TierEvent
from tierscale.loop.ports import PoolView, ScaleOutcome

DEFAULT_TIMEOUT_S = 10.0
"""Per-request timeout: a tick waits at most this long on one call."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class KubeCluster:
    """Reads and writes through one `kubernetes.client.ApiClient` (its kubeconfig or
    in-cluster service account decides which cluster and which identity)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        reporting_instance: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        keda_recheck_s: float = KEDA_RECHECK_S,
    ) -> None:
        """`reporting_instance` names this operator replica in Events (default: the host
        name, which in a pod is the pod's name)."""
        self._core = client.CoreV1Api(api_client)
        self._timeout_s = timeout_s
        self._reader = PoolReader(
            api_client, timeout_s=timeout_s, keda_recheck_s=keda_recheck_s, monotonic=monotonic
        )
        self._scaler = Scaler(api_client, self._reader, timeout_s=timeout_s)
        self._slotiers = SlotierWriter(
            api_client,
            reporting_instance=reporting_instance or socket.gethostname(),
            clock=clock,
            timeout_s=timeout_s,
        )

    def pools(self, tiers: Sequence[Tier]) -> Mapping[str, PoolView]:
        return self._reader.pools(tiers)

    def allocatable_gpus(self) -> Mapping[str, int]:
        nodes = call_json(self._core.list_node, what="list nodes", timeout_s=self._timeout_s)
        return allocatable_gpus(nodes.get("items") or [])

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        return self._scaler.scale(pool, replicas, inflight_by_pod)

    def write_status(self, tier: Tier, status: Mapping[str, Any]) -> None:
        self._slotiers.write_status(tier, status)

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        return self._slotiers.status_context(tier)

    def emit_event(self, tier: Tier, event: TierEvent) -> None:
        self._slotiers.emit_event(tier, event)
