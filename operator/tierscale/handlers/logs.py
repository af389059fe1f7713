"""Logs as JSON lines (or text): one line per decision, carrying its record id.

Every line is one JSON object with `time`, `level`, `logger` and `message`, plus the
fields a call passed in `extra={"fields": {...}}`; kopf's per-object lines carry the
object they are about (`object`). A decision line is what `tierscale replay` starts
from: its `record_id` names the record file (`TIERSCALE_RECORD_DIR`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FIELDS_ATTR = "fields"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            line["object"] = {k: ref.get(k) for k in ("kind", "namespace", "name") if ref.get(k)}
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict) and fields:
            text += " " + json.dumps(fields, default=str, separators=(",", ":"))
        return text


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Root logging to stderr in `json` or `text`; kopf's chatty per-handler lines (each
    timer run) stay at DEBUG so the log is one line per decision, not per SLOTier."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kopf._core.reactor.running").setLevel(logging.INFO)
    for noisy in ("urllib3", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
