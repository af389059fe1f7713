"""Duration strings of the SLOTier API ("300ms", "5s", "1.5m") and their value in seconds.

The grammar is deliberately a strict subset of what Go's `time.ParseDuration` (and hence
CEL's `duration()`) accepts, so the CRD's OpenAPI pattern, its CEL rules and this parser
can never disagree about what a duration means.
"""

from __future__ import annotations

import re
from typing import Final

DURATION_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?(ms|s|m)$"
"""A non-negative decimal number followed by a unit: ms, s or m (minutes)."""
DURATION_MAX_LENGTH: Final = 32
"""Bounded so the API server's CEL cost estimate of `duration(self)` stays small."""

_SECONDS_BY_UNIT: Final = {"ms": 0.001, "s": 1.0, "m": 60.0}
_DURATION_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m)")


def parse_duration(text: str) -> float:
    """Seconds in a duration string; raises ValueError naming the expected form."""
    match = _DURATION_RE.fullmatch(text) if len(text) <= DURATION_MAX_LENGTH else None
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a number and a unit, like 300ms, 5s or 1.5m"
        )
    number, unit = match.groups()
    return float(number) * _SECONDS_BY_UNIT[unit]


def format_duration(seconds: float) -> str:
    """The shortest exact duration string for `seconds` (inverse of `parse_duration`)."""
    if seconds < 0:
        raise ValueError(f"durations are non-negative, got {seconds} s")
    millis = round(seconds * 1000.0, 6)
    if millis < 1000.0 or millis % 1000.0:
        return f"{_trim(millis)}ms"
    return f"{_trim(millis / 1000.0)}s"


def _trim(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"
