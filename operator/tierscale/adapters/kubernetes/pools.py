"""Read each tier's Deployment as a `PoolView`: replicas, engine arguments, other writers.

One GET per Deployment, one list of HPAs and of KEDA ScaledObjects per namespace per
tick. KEDA may not be installed: a 404 on its ScaledObject list means "none", remembered
for `keda_recheck_s` so a cluster without KEDA costs no request per tick.

What it remembers between ticks: `writers.WriterMemory` (has tierscale owned the
replicas since the process started), and from the last read of each Deployment its
uid, label selector and whether a hand-back is pending (for `scale`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client

from tierscale.adapters.kubernetes import writers
from tierscale.adapters.kubernetes.api_calls import ApiCallError, call_json
from tierscale.adapters.kubernetes.engine_args import engine_args
from tierscale.adapters.kubernetes.names import KEDA_GROUP, KEDA_PLURAL, KEDA_VERSION
from tierscale.domain.metrics import PoolReplicas
from tierscale.domain.tiers import Tier
from tierscale.loop.ports import EngineArgs, PoolView

KEDA_RECHECK_S = 300.0
"""How long a missing ScaledObject CRD is believed missing before asking again."""


class PoolReader:
    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        timeout_s: float,
        keda_recheck_s: float = KEDA_RECHECK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._apps = client.AppsV1Api(api_client)
        self._autoscaling = client.AutoscalingV2Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._timeout_s = timeout_s
        self._keda_recheck_s = keda_recheck_s
        self._monotonic = monotonic
        self._keda_absent_until: float | None = None
        self._memory = writers.WriterMemory()
        self.selector_by_pool: dict[str, str] = {}
        self.uid_by_pool: dict[str, str] = {}
        self.resume_requested: set[str] = set()
        """Pools whose last read showed the resume annotation (and no autoscaler)."""

    def pools(self, tiers: Sequence[Tier]) -> dict[str, PoolView]:
        names_by_namespace: dict[str, list[str]] = {}
        for tier in tiers:
            names = names_by_namespace.setdefault(tier.namespace, [])
            if tier.pool.deployment not in names:
                names.append(tier.pool.deployment)
        views: dict[str, PoolView] = {}
        for namespace, names in names_by_namespace.items():
            hpas = self._list_hpas(namespace)
            scaled_objects = self._list_scaled_objects(namespace)
            for name in names:
                view = self._view(namespace, name, hpas, scaled_objects)
                views[view.pool_key] = view
        return views

    def mark_owned(self, pool_key: str) -> None:
        """tierscale just wrote (or claimed) this Deployment's replicas."""
        uid = self.uid_by_pool.get(pool_key)
        if uid is not None:
            self._memory.wrote(pool_key, uid)

    def _view(
        self,
        namespace: str,
        name: str,
        hpas: Sequence[Mapping[str, Any]],
        scaled_objects: Sequence[Mapping[str, Any]],
    ) -> PoolView:
        key = f"{namespace}/{name}"
        try:
            deployment = call_json(
                self._apps.read_namespaced_deployment,
                name,
                namespace,
                what=f"read Deployment {key}",
                timeout_s=self._timeout_s,
            )
        except ApiCallError as err:
            if err.status == 404:
                return PoolView(key, False, PoolReplicas(None, None), EngineArgs())
            raise
        metadata = deployment.get("metadata") or {}
        uid = str(metadata.get("uid", ""))
        self.uid_by_pool[key] = uid
        self.selector_by_pool[key] = label_selector((deployment.get("spec") or {}).get("selector"))
        evidence = writers.evidence(deployment, hpas, scaled_objects)
        other_writer = self._memory.judge(key, uid, evidence)
        if evidence.resume_requested and other_writer is None:
            self.resume_requested.add(key)
        else:
            self.resume_requested.discard(key)
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        return PoolView(
            pool_key=key,
            exists=True,
            replicas=PoolReplicas(
                current=int(spec.get("replicas", 1)), ready=int(status.get("readyReplicas", 0))
            ),
            engine=engine_args(deployment),
            other_writer=other_writer,
            resource_version=metadata.get("resourceVersion"),
        )

    def _list_hpas(self, namespace: str) -> list[Mapping[str, Any]]:
        listed = call_json(
            self._autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
            what=f"list HorizontalPodAutoscalers in {namespace}",
            timeout_s=self._timeout_s,
        )
        return list(listed.get("items") or [])

    def _list_scaled_objects(self, namespace: str) -> list[Mapping[str, Any]]:
        now = self._monotonic()
        if self._keda_absent_until is not None and now < self._keda_absent_until:
            return []
        try:
            listed = call_json(
                self._custom.list_namespaced_custom_object,
                KEDA_GROUP,
                KEDA_VERSION,
                namespace,
                KEDA_PLURAL,
                what=f"list KEDA ScaledObjects in {namespace}",
                timeout_s=self._timeout_s,
            )
        except ApiCallError as err:
            if err.status == 404:  # the CRD is not installed: no ScaledObject anywhere
                self._keda_absent_until = now + self._keda_recheck_s
                return []
            raise
        self._keda_absent_until = None
        return list(listed.get("items") or [])


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector as the `labelSelector` query string the API server takes."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        key, operator = expr.get("key"), expr.get("operator")
        values = ",".join(str(v) for v in expr.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def pool_key_parts(pool_key: str) -> tuple[str, str]:
    namespace, _, name = pool_key.partition("/")
    return namespace, name
