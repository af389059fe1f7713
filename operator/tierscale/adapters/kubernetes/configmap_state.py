"""Planner state in a ConfigMap per model group, so a restarted operator resumes.

Why a ConfigMap and not the SLOTier status: the state belongs to a model group, not to
one tier (the planner decides all tiers of a model jointly and its windows, learned bias
and smoothed lengths are keyed by tier inside one document), so no single SLOTier owns
it; it is internal and not for users to read or act on, while status is the user-facing
summary and is replaced whole every tick; and it must survive the deletion and
re-creation of any one SLOTier of the group.

One ConfigMap per served model in the operator's namespace, named
`tierscale-state-<readable part of the model name>-<hash of the exact name>` (a DNS-1123
name for any model name, never two models on one name), with the exact model name in an
annotation. The document is `records.dumps(state)`: versioned JSON checked against the
dataclasses on the way in. Content this tierscale cannot read (another schema version,
corrupt text) raises `StateUnreadable`: the caller starts from no state, and the next save
keeps the unreadable text under a second key instead of destroying it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from kubernetes import client

from tierscale import records
from tierscale.adapters.kubernetes.api_calls import MERGE_PATCH, ApiCallError, call_json
from tierscale.adapters.kubernetes.names import FIELD_MANAGER
from tierscale.domain.plans import PlannerState
from tierscale.loop.ports import PortError, StateUnreadable

NAME_PREFIX: Final = "tierscale-state-"
STATE_KEY: Final = "planner-state.json"
UNREADABLE_KEY: Final = "planner-state.unreadable.json"
"""The last content that could not be read, kept when a new state replaced it."""
MODEL_ANNOTATION: Final = "tierscale.dev/model"
UNREADABLE_ANNOTATION: Final = "tierscale.dev/unreadable-reason"
LABELS: Final = {"app.kubernetes.io/managed-by": "tierscale", "tierscale.dev/state": "planner"}
MAX_STATE_BYTES: Final = 900_000
"""A ConfigMap holds at most 1 MiB; leave room for the rest of the object."""
_SLUG_MAX: Final = 40
_HASH_CHARS: Final = 10


def configmap_name(model: str) -> str:
    """A valid, stable ConfigMap name for any model name (hash of the exact name last)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:_SLUG_MAX].strip("-")
    digest = hashlib.sha256(model.encode()).hexdigest()[:_HASH_CHARS]
    return f"{NAME_PREFIX}{slug}-{digest}" if slug else f"{NAME_PREFIX}{digest}"


class ConfigMapState:
    """`StatePort` over ConfigMaps in one namespace (the operator's)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, *, timeout_s: float = 10.0):
        self._core = client.CoreV1Api(api_client)
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._unreadable: dict[str, tuple[str, str]] = {}
        """model -> (text, why) of content that could not be read, kept on the next save."""

    def load(self, model: str) -> PlannerState | None:
        name = configmap_name(model)
        where = f"ConfigMap {self._namespace}/{name}"
        try:
            body = call_json(
                self._core.read_namespaced_config_map,
                name,
                self._namespace,
                what=f"read {where}",
                timeout_s=self._timeout_s,
            )
        except ApiCallError as err:
            if err.status == 404:
                return None
            raise
        stored_model = ((body.get("metadata") or {}).get("annotations") or {}).get(MODEL_ANNOTATION)
        text = (body.get("data") or {}).get(STATE_KEY)
        problem: str | None = None
        state: PlannerState | None = None
        if stored_model is not None and stored_model != model:
            problem = f"it holds the state of model {stored_model!r}, not {model!r}"
        elif text is None:
            problem = f"it has no `{STATE_KEY}` key"
        else:
            try:
                state = records.loads(PlannerState, text)
            except records.RecordError as err:
                problem = str(err)
        if state is not None:
            return state
        self._unreadable[model] = (str(text or ""), problem or "unreadable")
        raise StateUnreadable(
            f"planner state of model {model!r} in {where} cannot be read: {problem}; starting "
            f"from no state (the next save keeps the old text under `{UNREADABLE_KEY}`)"
        )

    def save(self, model: str, state: PlannerState) -> None:
        name = configmap_name(model)
        text = records.dumps(state)
        if len(text.encode()) > MAX_STATE_BYTES:
            raise PortError(
                f"planner state of model {model!r} is {len(text.encode())} bytes, more than a "
                f"ConfigMap holds ({MAX_STATE_BYTES}); not saved"
            )
        data = {STATE_KEY: text}
        annotations = {MODEL_ANNOTATION: model}
        unreadable = self._unreadable.get(model)
        if unreadable is not None:
            data[UNREADABLE_KEY] = unreadable[0]
            annotations[UNREADABLE_ANNOTATION] = unreadable[1][:1000]
        body = {
            "metadata": {
                "name": name,
                "namespace": self._namespace,
                "labels": dict(LABELS),
                "annotations": annotations,
            },
            "data": data,
        }
        self._write(name, body)
        self._unreadable.pop(model, None)

    def _write(self, name: str, body: dict[str, Any]) -> None:
        where = f"ConfigMap {self._namespace}/{name}"
        try:
            self._patch(name, body, where)
        except ApiCallError as err:
            if err.status != 404:
                raise
            try:
                call_json(
                    self._core.create_namespaced_config_map,
                    self._namespace,
                    body,
                    field_manager=FIELD_MANAGER,
                    what=f"create {where}",
                    timeout_s=self._timeout_s,
                )
            except ApiCallError as created:
                if created.status != 409:  # created meanwhile: update it instead
                    raise
                self._patch(name, body, where)

    def _patch(self, name: str, body: dict[str, Any], where: str) -> None:
        call_json(
            self._core.patch_namespaced_config_map,
            name,
            self._namespace,
            body,
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
            what=f"write {where}",
            timeout_s=self._timeout_s,
        )
