"""SLOTier status and Events: what a person sees with `kubectl get/describe slotier`.

Status goes through the `status` subresource as a JSON patch that replaces `/status`
whole. A merge patch would merge maps key by key, so a field the new status leaves out
(say an observed TTFT no longer measured) would stay behind, stale; the loop hands over
the complete status (`api.status` keeps each condition's lastTransitionTime while its
status is unchanged), so replacing it is exact. No resourceVersion is sent: tierscale is
the only writer of the status, and a spec edit in between must not block it.

Events are `events.k8s.io/v1` Events: the current Events API, whose required fields
(reportingController, reportingInstance, action, eventTime) make every Event say which
controller and which replica emitted it; `kubectl get events` and `kubectl describe`
show them like core Events (one storage, two views).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes import client

from tierscale.adapters.kubernetes.api_calls import JSON_PATCH, ApiCallError, call_json
from tierscale.adapters.kubernetes.names import FIELD_MANAGER, REPORTING_CONTROLLER
from tierscale.api.models import API_VERSION, GROUP, KIND, PLURAL, VERSION
from tierscale.domain.tiers import Tier
from tierscale.loop.actions import TierEvent
from tierscale.loop.ports import PortError

EVENT_ACTION: Final = "Plan"
"""The Events API's `action`: what tierscale did regarding the SLOTier (it planned it)."""
NOTE_MAX_BYTES: Final = 1024
"""The API server refuses an Event whose note is longer."""
NAME_MAX: Final = 253
FIELD_MAX: Final = 128
"""reportingInstance, action and reason are at most this long."""


class SlotierWriter:
    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        reporting_instance: str,
        clock: Callable[[], datetime],
        timeout_s: float,
    ) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._events = client.EventsV1Api(api_client)
        self._instance = reporting_instance[:FIELD_MAX]
        self._clock = clock
        self._timeout_s = timeout_s
        self._uid_by_tier: dict[str, str] = {}

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        body = self._read(tier)
        metadata = body.get("metadata") or {}
        generation = metadata.get("generation")
        conditions = (body.get("status") or {}).get("conditions") or []
        return (int(generation) if generation is not None else None), list(conditions)

    def write_status(self, tier: Tier, status: Mapping[str, Any]) -> None:
        call_json(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            tier.namespace,
            PLURAL,
            tier.name,
            [{"op": "add", "path": "/status", "value": dict(status)}],
            field_manager=FIELD_MANAGER,
            _content_type=JSON_PATCH,
            what=f"write the status of SLOTier {tier.key}",
            timeout_s=self._timeout_s,
        )

    def emit_event(self, tier: Tier, event: TierEvent) -> None:
        uid = self._uid_by_tier.get(tier.key)
        if uid is None:
            uid = str((self._read(tier).get("metadata") or {}).get("uid", ""))
        body = event_body(
            tier,
            event,
            uid=uid,
            now=self._clock(),
            instance=self._instance,
            token=secrets.token_hex(2),
        )
        call_json(
            self._events.create_namespaced_event,
            tier.namespace,
            body,
            field_manager=FIELD_MANAGER,
            what=f"create an Event on SLOTier {tier.key}",
            timeout_s=self._timeout_s,
        )

    def _read(self, tier: Tier) -> Mapping[str, Any]:
        try:
            body: Mapping[str, Any] = call_json(
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                tier.namespace,
                PLURAL,
                tier.name,
                what=f"read SLOTier {tier.key}",
                timeout_s=self._timeout_s,
            )
        except ApiCallError as err:
            if err.status == 404:
                raise PortError(f"SLOTier {tier.key} no longer exists") from err
            raise
        uid = (body.get("metadata") or {}).get("uid")
        if uid:
            self._uid_by_tier[tier.key] = str(uid)
        return body


def event_body(
    tier: Tier, event: TierEvent, *, uid: str, now: datetime, instance: str, token: str = ""
) -> dict[str, Any]:
    """An `events.k8s.io/v1` Event regarding the tier's SLOTier."""
    note = event.message.encode()[:NOTE_MAX_BYTES].decode(errors="ignore")
    regarding = {"apiVersion": API_VERSION, "kind": KIND, "name": tier.name}
    regarding["namespace"] = tier.namespace
    if uid:  # `kubectl describe` finds an object's Events by its uid
        regarding["uid"] = uid
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": event_name(tier.name, now, token), "namespace": tier.namespace},
        "eventTime": micro_time(now),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance,
        "action": EVENT_ACTION,
        "reason": event.reason.value[:FIELD_MAX],
        "note": note,
        "type": "Warning" if event.warning else "Normal",
        "regarding": regarding,
    }


def event_name(regarding: str, now: datetime, token: str) -> str:
    """`<object>.<unix ns in hex><token>`, as client-go names Events (the API server refuses
    a `generateName` ending in a dot); `token` keeps two Events of one instant apart."""
    stamp = f"{int(now.timestamp() * 1e9):x}{token}"
    return f"{regarding[: NAME_MAX - len(stamp) - 1]}.{stamp}"


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
