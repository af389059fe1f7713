"""Log lines are one JSON object each, with the fields a decision line carries."""

from __future__ import annotations

import json
import logging

from tierscale.handlers.logs import FIELDS_ATTR, JsonFormatter


def test_a_line_is_one_json_object_with_its_fields_and_object() -> None:
    record = logging.LogRecord("tierscale.decision", logging.INFO, "x", 1, "decision", None, None)
    setattr(record, FIELDS_ATTR, {"record_id": "llama@1.000", "tiers": {"a/gold": {"desired": 2}}})
    record.k8s_ref = {"kind": "SLOTier", "namespace": "a", "name": "gold", "uid": "u"}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "decision" and line["level"] == "info"
    assert line["record_id"] == "llama@1.000"
    assert line["tiers"] == {"a/gold": {"desired": 2}}
    assert line["object"] == {"kind": "SLOTier", "namespace": "a", "name": "gold"}
