"""What to send and when: trace replay or a synthetic arrival pattern, with tiers.

Every source is bounded before anything is sent: ``max_requests`` and ``max_duration_s``
cut the schedule, so a run can never grow past what the caller allowed. Randomness comes
from a seeded ``numpy.random.Generator``; the same seed gives the same schedule.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRACE_COLUMNS = ("arrived_at", "num_prefill_tokens", "num_decode_tokens")


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request of the schedule; ``send_at_s`` is relative to the run's start."""

    index: int
    send_at_s: float
    prompt_tokens: int
    output_tokens: int
    tier: str


@dataclass(frozen=True, slots=True)
class Bounds:
    max_requests: int
    max_duration_s: float

    def __post_init__(self) -> None:
        if self.max_requests < 1 or not self.max_duration_s > 0:
            raise ValueError("max_requests must be >= 1 and max_duration_s > 0")


@dataclass(frozen=True, slots=True)
class Arrival:
    at_s: float
    prompt_tokens: int
    output_tokens: int


def read_trace(path: Path, *, start_s: float = 0.0) -> list[Arrival]:
    """Read an ``arrived_at,num_prefill_tokens,num_decode_tokens`` CSV (Vidur/Azure form).

    Rows before ``start_s`` are skipped and times are shifted so the first kept row is at 0.
    """
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(TRACE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        rows = [
            Arrival(
                float(r["arrived_at"]),
                max(1, int(float(r["num_prefill_tokens"]))),
                max(1, int(float(r["num_decode_tokens"]))),
            )
            for r in reader
        ]
    rows = sorted((r for r in rows if r.at_s >= start_s), key=lambda r: r.at_s)
    if not rows:
        return []
    t0 = rows[0].at_s
    return [Arrival(r.at_s - t0, r.prompt_tokens, r.output_tokens) for r in rows]


def poisson_arrivals(
    rate_rps: float,
    *,
    duration_s: float,
    prompt_tokens: int,
    output_tokens: int,
    rng: np.random.Generator,
) -> list[Arrival]:
    """A Poisson process of fixed-size requests (sizes fixed so latencies compare)."""
    if rate_rps <= 0:
        raise ValueError("rate_rps must be > 0")
    out: list[Arrival] = []
    t = float(rng.exponential(1.0 / rate_rps))
    while t < duration_s:
        out.append(Arrival(t, prompt_tokens, output_tokens))
        t += float(rng.exponential(1.0 / rate_rps))
    return out


def step_arrivals(
    rates_rps: Sequence[float],
    *,
    step_s: float,
    prompt_tokens: int,
    output_tokens: int,
    rng: np.random.Generator,
) -> list[Arrival]:
    """Poisson arrivals whose rate jumps every ``step_s``: rates[0], rates[1], ..."""
    out: list[Arrival] = []
    for k, rate in enumerate(rates_rps):
        if rate <= 0:
            continue
        part = poisson_arrivals(
            rate,
            duration_s=step_s,
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            rng=rng,
        )
        out.extend(Arrival(a.at_s + k * step_s, a.prompt_tokens, a.output_tokens) for a in part)
    return out


def parse_mix(text: str) -> dict[str, float]:
    """``"gold=0.2,silver=0.8"`` -> shares that sum to 1."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if not name.strip() or not weight:
            raise ValueError(f"tier mix entry {part!r} is not NAME=WEIGHT")
        shares[name.strip()] = float(weight)
    total = sum(shares.values())
    if total <= 0 or any(w < 0 for w in shares.values()):
        raise ValueError(f"tier mix {text!r} needs non-negative weights with a positive sum")
    return {k: v / total for k, v in shares.items()}


def schedule(
    arrivals: Sequence[Arrival],
    *,
    mix: Mapping[str, float],
    bounds: Bounds,
    time_scale: float,
    rng: np.random.Generator,
) -> list[RequestSpec]:
    """Assign tiers by ``mix``, compress time by ``time_scale`` (2 = twice as fast), cut.

    The cut is applied after scaling: ``max_duration_s`` is wall-clock seconds of sending.
    """
    if time_scale <= 0:
        raise ValueError("time_scale must be > 0")
    tiers = list(mix)
    out: list[RequestSpec] = []
    for arrival in arrivals:
        send_at_s = arrival.at_s / time_scale
        if len(out) >= bounds.max_requests or send_at_s >= bounds.max_duration_s:
            break
        tier = tiers[int(rng.choice(len(tiers), p=[mix[t] for t in tiers]))]
        out.append(
            RequestSpec(len(out), send_at_s, arrival.prompt_tokens, arrival.output_tokens, tier)
        )
    return out
