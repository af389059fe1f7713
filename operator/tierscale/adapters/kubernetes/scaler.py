"""Set a Deployment's replicas through `/scale`, safely.

- Only through the `scale` subresource, as field manager `tierscale`, with the
  resourceVersion the tick read: if the Deployment changed since (another writer, a
  rollout, a status update), the API server answers 409 and nothing is written. That is
  reported as `CONFLICT` and never retried here: the next tick re-reads and decides again
  on what is really there.
- Never over another writer (`REFUSED`), never a write that changes nothing (`UNCHANGED`).
- A pending hand-back (`tierscale.dev/resume`, see `writers`) is taken first: claim the
  replicas as they are (server-side apply of the current value on `/scale`), then remove
  the annotation, each with the resourceVersion the previous step returned, so a write
  of anyone else in between is a 409, not overwritten.
- Before a scale-down, the pods to remove are marked with a low
  `controller.kubernetes.io/pod-deletion-cost` (`pod_removal`), so the ReplicaSet removes
  idle pods, not ones with requests in flight. If marking fails, nothing is scaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from tierscale.adapters.kubernetes import pod_removal
from tierscale.adapters.kubernetes.api_calls import (
    APPLY_PATCH,
    MERGE_PATCH,
    ApiCallError,
    call_json,
)
from tierscale.adapters.kubernetes.names import (
    DELETION_COST_ANNOTATION,
    FIELD_MANAGER,
    RESUME_ANNOTATION,
)
from tierscale.adapters.kubernetes.pools import PoolReader, label_selector, pool_key_parts
from tierscale.loop.ports import PoolView, PortError, ScaleOutcome


class _Conflict(Exception):
    """A write met a 409: the Deployment changed since it was read."""


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
        if pool.resource_version is None:
            raise PortError(f"no resourceVersion read for {pool.pool_key}: re-read first")
        try:
            version = pool.resource_version
            if pool.pool_key in self._reader.resume_requested:
                version = self._take_back(pool, version)
            current = pool.replicas.current
            if current == replicas:
                return ScaleOutcome.UNCHANGED
            if current is not None and replicas < current:
                self._mark_removals(pool.pool_key, current - replicas, inflight_by_pod)
            self._write_scale(pool.pool_key, replicas, version, apply=False)
        except _Conflict:
            return ScaleOutcome.CONFLICT
        self._reader.mark_owned(pool.pool_key)
        return ScaleOutcome.SCALED

    def _take_back(self, pool: PoolView, version: str) -> str:
        """Claim the replicas a person handed back, remove their annotation; the
        resourceVersion after both."""
        namespace, name = pool_key_parts(pool.pool_key)
        claimed = self._write_scale(pool.pool_key, pool.replicas.current, version, apply=True)
        self._reader.mark_owned(pool.pool_key)
        patch = {
            "metadata": {
                "resourceVersion": claimed["metadata"]["resourceVersion"],
                "annotations": {RESUME_ANNOTATION: None},
            }
        }
        patched = self._call(
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            patch,
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
            what=f"remove {RESUME_ANNOTATION} from Deployment {pool.pool_key}",
        )
        self._reader.resume_requested.discard(pool.pool_key)
        return str(patched["metadata"]["resourceVersion"])

    def _write_scale(
        self, pool_key: str, replicas: int | None, version: str, *, apply: bool
    ) -> Any:
        namespace, name = pool_key_parts(pool_key)
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
            "spec": {"replicas": replicas},
        }
        if apply:  # server-side apply: ownership of the value as it is, nothing changed
            return self._call(
                self._apps.patch_namespaced_deployment_scale,
                name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY_PATCH,
                what=f"claim the replicas of Deployment {pool_key}",
            )
        return self._call(
            self._apps.replace_namespaced_deployment_scale,
            name,
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            what=f"scale Deployment {pool_key} to {replicas}",
        )

    def _call(self, method: Any, *args: Any, what: str, **kw: Any) -> Any:
        try:
            return call_json(method, *args, what=what, timeout_s=self._timeout_s, **kw)
        except ApiCallError as err:
            if err.status == 409:
                raise _Conflict(what) from err
            raise

    def _mark_removals(
        self, pool_key: str, remove_count: int, inflight_by_pod: Mapping[str, float]
    ) -> None:
        namespace, name = pool_key_parts(pool_key)
        selector = self._reader.selector_by_pool.get(pool_key)
        if selector is None:
            deployment = self._call(
                self._apps.read_namespaced_deployment,
                name,
                namespace,
                what=f"read Deployment {pool_key}",
            )
            selector = label_selector((deployment.get("spec") or {}).get("selector"))
        listed = self._call(
            self._core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            what=f"list the pods of {pool_key}",
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
