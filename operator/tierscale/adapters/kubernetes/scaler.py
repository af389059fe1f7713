"""Set a Deployment's replicas through `/scale`, safely.

- Only through the `scale` subresource, as field manager `tierscale`, with the
  resourceVersion the tick read: if the Deployment changed since (another writer, a
  rollout, a status update), the API server answers 409 and nothing is written. That is
  reported as `CONFLICT` and never retried here: the next tick re-reads and decides again
  on what is really there.
- Never over another writer (`REFUSED`), never a write that changes nothing (`UNCHANGED`).
- Before a scale-down, the pods to remove are marked with a low
  `controller.kubernetes.io/pod-deletion-cost` (`pod_removal`), so the ReplicaSet removes
  idle pods, not ones with requests in flight. If marking fails, nothing is scaled.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client

from tierscale.adapters.kubernetes import pod_removal
from tierscale.adapters.kubernetes.api_calls import MERGE_PATCH, ApiCallError, call_json
from tierscale.adapters.kubernetes.names import DELETION_COST_ANNOTATION, FIELD_MANAGER
from tierscale.adapters.kubernetes.pools import PoolReader, label_selector, pool_key_parts
from tierscale.loop.ports import PoolView, PortError, ScaleOutcome


class Scaler:
    def __init__(self, api_client: client.ApiClient, reader: PoolReader, *, timeout_s: float):
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._reader = reader
        self._timeout_s = timeout_s

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        if replicas < 0:
            raise PortError(f"cannot scale {pool.pool_key} to {replicas} replicas")
        if not pool.exists:
            raise PortError(f"Deployment {pool.pool_key} does not exist: nothing to scale")
        if pool.other_writer is not None:
            return ScaleOutcome.REFUSED
        current = pool.replicas.current
        if current == replicas:
            return ScaleOutcome.UNCHANGED
        if pool.resource_version is None:
            raise PortError(f"no resourceVersion read for {pool.pool_key}: re-read first")
        namespace, name = pool_key_parts(pool.pool_key)
        if current is not None and replicas < current:
            self._mark_removals(pool.pool_key, current - replicas, inflight_by_pod)
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": pool.resource_version,
            },
            "spec": {"replicas": replicas},
        }
        try:
            call_json(
                self._apps.replace_namespaced_deployment_scale,
                name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                what=f"scale Deployment {pool.pool_key} to {replicas}",
                timeout_s=self._timeout_s,
            )
        except ApiCallError as err:
            if err.status == 409:
                return ScaleOutcome.CONFLICT
            raise
        self._reader.mark_owned(pool.pool_key)
        return ScaleOutcome.SCALED

    def _mark_removals(
        self, pool_key: str, remove_count: int, inflight_by_pod: Mapping[str, float]
    ) -> None:
        namespace, name = pool_key_parts(pool_key)
        selector = self._reader.selector_by_pool.get(pool_key)
        if selector is None:
            deployment = call_json(
                self._apps.read_namespaced_deployment,
                name,
                namespace,
                what=f"read Deployment {pool_key}",
                timeout_s=self._timeout_s,
            )
            selector = label_selector((deployment.get("spec") or {}).get("selector"))
        listed = call_json(
            self._core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            what=f"list the pods of {pool_key}",
            timeout_s=self._timeout_s,
        )
        pods = pod_removal.live_pods(listed.get("items") or [], name)
        removals = pod_removal.choose_removals(pods, remove_count, inflight_by_pod)
        for pod, cost in sorted(pod_removal.cost_patches(pods, removals).items()):
            try:
                call_json(
                    self._core.patch_namespaced_pod,
                    pod,
                    namespace,
                    {"metadata": {"annotations": {DELETION_COST_ANNOTATION: cost}}},
                    field_manager=FIELD_MANAGER,
                    _content_type=MERGE_PATCH,
                    what=f"set the deletion cost of pod {namespace}/{pod}",
                    timeout_s=self._timeout_s,
                )
            except ApiCallError as err:
                if err.status != 404:  # a pod already gone needs no mark
                    raise
