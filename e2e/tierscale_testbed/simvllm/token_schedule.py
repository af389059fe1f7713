"""When each output token of a request leaves the engine.

The engine model reports a request's first-token and finish times; the tokens in between
come one per decode step. Until the engine exposes per-step emission times, the decode
tokens are spaced evenly between the two, which keeps the per-request mean TPOT exact and
the client-side TTFT exact, and only smooths step-to-step jitter inside one request.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def token_times_s(first_token_s: float, finish_s: float, output_tokens: int) -> list[float]:
    """Emission time of each of ``output_tokens`` tokens, first at ``first_token_s``.

    The last token leaves at ``finish_s``; the rest are evenly spaced between.
    """
    if output_tokens < 1:
        raise ValueError(f"output_tokens must be >= 1, got {output_tokens}")
    if finish_s < first_token_s:
        raise ValueError(f"finish_s {finish_s} is before first_token_s {first_token_s}")
    if output_tokens == 1:
        return [first_token_s]
    gap_s = (finish_s - first_token_s) / (output_tokens - 1)
    return [first_token_s + k * gap_s for k in range(output_tokens - 1)] + [finish_s]


def inter_token_gaps_s(times_s: Sequence[float]) -> list[float]:
    """The gaps between consecutive tokens (what vLLM's ITL histogram observes)."""
    return [b - a for a, b in zip(times_s, times_s[1:], strict=False)]


def due_count(times_s: Sequence[float], now_s: float) -> int:
    """How many tokens of a sorted schedule are due at ``now_s`` (time inclusive)."""
    return bisect.bisect_right(times_s, now_s)
