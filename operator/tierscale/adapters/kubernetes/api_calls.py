"""One way to call the API server: raw JSON in and out, every failure a PortError.

Responses are read as JSON (`_preload_content=False`) rather than the client's model
objects: the rules in this package then see exactly what `kubectl get -o json` shows (and
what the fake holds), and no time goes into building objects that are read once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from tierscale.loop.ports import PortError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
"""Server-side apply (JSON is YAML: the client sends the body as JSON)."""


class ApiCallError(PortError):
    """A call the API server refused or that did not reach it (`status` None)."""

    def __init__(self, what: str, status: int | None, detail: str) -> None:
        code = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"could not {what}: {code}: {detail}")
        self.status = status


def call_json(
    method: Callable[..., Any], *args: Any, what: str, timeout_s: float, **kw: Any
) -> Any:
    """`method(*args, **kw)` of a `kubernetes.client` API; the response body as JSON.

    `what` completes "could not ..." in the error message (e.g. "read Deployment ns/x")."""
    try:
        response = method(*args, _preload_content=False, _request_timeout=timeout_s, **kw)
    except ApiException as err:
        raise ApiCallError(what, err.status, _reason(err)) from err
    except (HTTPError, OSError) as err:
        raise ApiCallError(what, None, str(err)) from err
    data = response.data
    return json.loads(data) if data else None


def _reason(err: ApiException) -> str:
    """The API server's own message (a `Status` object's `message`), else the HTTP reason."""
    body = err.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(err.reason or "")
