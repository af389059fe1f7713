"""Duration strings of the SLOTier API ("300ms", "5s", "1.5m") and their value in seconds.

The grammar is deliberately a strict subset of what Go's `time.ParseDuration` (and hence
CEL's `duration()`) accepts, so the CRD's OpenAPI pattern, its CEL rules and this parser
can never disagree about what a duration means.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Final

DURATION_PATTERN: Final = r"^[0-9]{1,8}(\.[0-9]{1,3})?(ms|s|m)$"
"""A non-negative decimal number followed by a unit: ms, s or m (minutes).

At most 8 integer digits, so Go's int64-nanosecond durations cannot overflow (CEL's
`duration()` would fail where Python would not), and at most 3 decimals, so no non-zero
value rounds to 0 ns in Go while staying positive here.
"""
DURATION_MAX_LENGTH: Final = 16
"""Bounded so the API server's CEL cost estimate of `duration(self)` stays small."""

_SECONDS_BY_UNIT: Final = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60)}
_DURATION_RE: Final = re.compile(r"([0-9]{1,8}(?:\.[0-9]{1,3})?)(ms|s|m)")


def parse_duration(text: str) -> float:
    """Seconds in a duration string; raises ValueError naming the expected form.

    The product is exact in decimal and rounded once, so "19.6ms" is the float nearest
    0.0196, the same number as writing 0.0196 in seconds (19.6 * 0.001 is one ulp off).
    """
    match = _DURATION_RE.fullmatch(text) if len(text) <= DURATION_MAX_LENGTH else None
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a number and a unit, like 300ms, 5s or 1.5m"
        )
    number, unit = match.groups()
    return float(Decimal(number) * _SECONDS_BY_UNIT[unit])


def format_duration(seconds: float) -> str:
    """The most readable duration string that parses back to `seconds` (300ms, 90s, 1.5m).

    Raises ValueError when no string of the grammar holds the value (negative, finer than
    a microsecond, or beyond 10^8 minutes); every value `parse_duration` returns fits.
    """
    if seconds >= 0:
        candidates = ([f"{_trim(seconds * 1000.0)}ms"] if seconds < 1.0 else []) + [
            f"{_trim(seconds / scale)}{unit}" for unit, scale in _FORMATS
        ]
        for text in candidates:
            match = _DURATION_RE.fullmatch(text)
            if match and math.isclose(parse_duration(text), seconds, rel_tol=1e-12, abs_tol=1e-12):
                return text
    raise ValueError(f"{seconds} s cannot be written as a duration like 300ms, 5s or 1.5m")


_FORMATS: Final = (("s", 1.0), ("ms", 0.001), ("m", 60.0))


def _trim(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
