"""Request streams for the fleet simulator: replayed traces and synthetic generators.

A workload is four parallel numpy arrays, sorted by arrival, plus the tier names. Arrays
rather than request objects keep a one-hour, 360k-request run cheap to build, slice and
score, and make "same seed, same workload" trivially checkable.

Synthetic arrivals are drawn in *operational time*: a unit-rate renewal process (Poisson,
or gamma inter-arrivals for burstiness) mapped through the inverse of the integrated rate
profile. One mechanism then covers constant, step, ramp and diurnal load with any
burstiness, instead of one generator per shape.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class WorkloadError(ValueError):
    """A trace or workload specification is unusable; the message names file and field."""


@dataclass(frozen=True, slots=True)
class Workload:
    """Requests of one run, sorted by arrival time."""

    tier_keys: tuple[str, ...]
    arrival_s: FloatArray
    prompt_tokens: IntArray
    output_tokens: IntArray
    tier_index: IntArray
    """Index into `tier_keys` per request."""
    duration_s: float
    """Length of the observed horizon (>= last arrival)."""
    ttft_slo_s: FloatArray | None = None
    """Per-request TTFT SLO overriding the tier's (PolyServe draws one per request)."""

    @property
    def num_requests(self) -> int:
        return int(self.arrival_s.shape[0])

    def mean_rate_rps(self) -> float:
        return self.num_requests / self.duration_s if self.duration_s > 0 else 0.0

    def peak_rate_rps(self, window_s: float = 60.0) -> float:
        """Highest arrival rate over any aligned window (what a capacity planner sizes for)."""
        if self.num_requests == 0:
            return 0.0
        bins = np.arange(0.0, self.duration_s + window_s, window_s)
        counts, _ = np.histogram(self.arrival_s, bins=bins)
        return float(counts.max()) / window_s

    def rate_by_tier_rps(self, start_s: float, end_s: float) -> dict[str, float]:
        """Actual arrival rate per tier in [start_s, end_s) (the oracle's perfect knowledge)."""
        lo, hi = np.searchsorted(self.arrival_s, [start_s, end_s], side="left")
        span_s = max(end_s - start_s, 1e-9)
        counts = np.bincount(self.tier_index[lo:hi], minlength=len(self.tier_keys))
        return {key: float(counts[i]) / span_s for i, key in enumerate(self.tier_keys)}


def _sorted_workload(
    tier_keys: Sequence[str],
    arrival_s: FloatArray,
    prompt_tokens: IntArray,
    output_tokens: IntArray,
    tier_index: IntArray,
    duration_s: float,
    ttft_slo_s: FloatArray | None = None,
) -> Workload:
    order = np.argsort(arrival_s, kind="stable")
    return Workload(
        tier_keys=tuple(tier_keys),
        arrival_s=np.ascontiguousarray(arrival_s[order], dtype=np.float64),
        prompt_tokens=np.ascontiguousarray(prompt_tokens[order], dtype=np.int64),
        output_tokens=np.ascontiguousarray(output_tokens[order], dtype=np.int64),
        tier_index=np.ascontiguousarray(tier_index[order], dtype=np.int64),
        duration_s=float(duration_s),
        ttft_slo_s=None if ttft_slo_s is None else np.asarray(ttft_slo_s[order], np.float64),
    )


# ---------------------------------------------------------------- traces


@dataclass(frozen=True, slots=True)
class Trace:
    """Raw trace columns (arrival times from 0, token counts), plus an optional tier column."""

    arrival_s: FloatArray
    prompt_tokens: IntArray
    output_tokens: IntArray
    tier_names: tuple[str, ...] | None = None


_TRACE_COLUMNS = ("arrived_at", "num_prefill_tokens", "num_decode_tokens")


def load_trace_csv(path: Path) -> Trace:
    """Read a trace with columns arrived_at,num_prefill_tokens,num_decode_tokens[,tier]."""
    try:
        handle = path.open(newline="")
    except OSError as err:
        raise WorkloadError(f"trace {path}: cannot open ({err.strerror})") from err
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != list(_TRACE_COLUMNS):
            raise WorkloadError(
                f"trace {path}: expected header {','.join(_TRACE_COLUMNS)}[,tier], got {header}"
            )
        has_tier = len(header) > 3 and header[3].strip() == "tier"
        arrivals: list[float] = []
        prompts: list[int] = []
        outputs: list[int] = []
        tiers: list[str] = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                arrivals.append(float(row[0]))
                prompts.append(int(float(row[1])))
                outputs.append(int(float(row[2])))
            except (ValueError, IndexError) as err:
                raise WorkloadError(
                    f"trace {path} line {line_no}: expected numbers "
                    f"arrived_at,num_prefill_tokens,num_decode_tokens, got {row}"
                ) from err
            if prompts[-1] < 1 or outputs[-1] < 1:
                raise WorkloadError(f"trace {path} line {line_no}: token counts must be >= 1")
            if has_tier:
                tiers.append(row[3].strip() if len(row) > 3 else "")
    if not arrivals:
        raise WorkloadError(f"trace {path}: no requests")
    arrival = np.asarray(arrivals, dtype=np.float64)
    arrival -= arrival.min()
    return Trace(
        arrival_s=arrival,
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        tier_names=tuple(tiers) if has_tier else None,
    )


def trace_peak_rate_rps(arrival_s: FloatArray, window_s: float) -> float:
    if arrival_s.size == 0:
        return 0.0
    bins = np.arange(0.0, float(arrival_s.max()) + window_s, window_s)
    counts, _ = np.histogram(arrival_s, bins=bins)
    return float(counts.max()) / window_s


@dataclass(frozen=True, slots=True)
class TraceReplay:
    """How to replay a trace: which slice, how fast, how dense, which tier."""

    start_s: float = 0.0
    duration_s: float | None = None
    """Slice length in trace time (before time scaling); None = to the end."""
    time_scale: float = 1.0
    """Divide inter-arrival times by this (2.0 = twice as fast, same requests)."""
    peak_rate_rps: float | None = None
    """If set, choose time_scale so the busiest `peak_window_s` reaches this rate."""
    peak_window_s: float = 60.0
    rate_scale: float = 1.0
    """Thin (<1) or replicate (>1) requests at the same pace; copies are jittered."""


def replay_trace(
    trace: Trace,
    replay: TraceReplay,
    tier_keys: Sequence[str],
    phases: Sequence[MixPhase] | None,
    rng: np.random.Generator,
) -> Workload:
    """Turn a trace into a workload: slice, rate-scale, time-scale, assign tiers.

    Tiers come from the mix in force at each request's replayed arrival (`phases`, times
    after time scaling), or from the trace's tier column when `phases` is None.
    """
    end_s = np.inf if replay.duration_s is None else replay.start_s + replay.duration_s
    keep = (trace.arrival_s >= replay.start_s) & (trace.arrival_s < end_s)
    arrival = trace.arrival_s[keep] - replay.start_s
    prompt = trace.prompt_tokens[keep]
    output = trace.output_tokens[keep]
    names = None if trace.tier_names is None else np.asarray(trace.tier_names)[keep]
    span_s = float(replay.duration_s) if replay.duration_s is not None else float(arrival.max())
    if replay.rate_scale != 1.0:
        copies = np.floor(replay.rate_scale) + (
            rng.random(arrival.size) < (replay.rate_scale - np.floor(replay.rate_scale))
        )
        idx = np.repeat(np.arange(arrival.size), copies.astype(np.int64))
        gap_s = span_s / max(arrival.size, 1)
        first = np.r_[True, idx[1:] != idx[:-1]]
        arrival = arrival[idx] + np.where(first, 0.0, rng.uniform(0.0, gap_s, idx.size))
        prompt, output = prompt[idx], output[idx]
        names = None if names is None else names[idx]
    scale = replay.time_scale
    if replay.peak_rate_rps is not None:
        peak = trace_peak_rate_rps(arrival, replay.peak_window_s * scale)
        # Scaling time by s multiplies every rate by s; aim the busiest window at the target.
        scale = replay.peak_rate_rps / max(peak, 1e-9)
    arrival = arrival / scale
    if phases is None:
        tier_index = _assign_tiers(arrival.size, tier_keys, None, names, rng)
    else:
        tier_index = _assign_by_phase(arrival, tier_keys, phases, rng)
    return _sorted_workload(tier_keys, arrival, prompt, output, tier_index, span_s / scale)


def _assign_tiers(
    n: int,
    tier_keys: Sequence[str],
    mix: Mapping[str, float] | None,
    names: npt.NDArray[np.str_] | None,
    rng: np.random.Generator,
) -> IntArray:
    if mix is None:
        if names is None:
            raise WorkloadError("workload: the trace has no tier column, so tier_mix is required")
        lookup = {k.split("/")[-1]: i for i, k in enumerate(tier_keys)}
        unknown = sorted(set(names.tolist()) - set(lookup))
        if unknown:
            raise WorkloadError(f"trace tier column: unknown tiers {unknown}")
        return np.asarray([lookup[str(x)] for x in names], dtype=np.int64)
    probs = np.asarray([mix.get(k, 0.0) for k in tier_keys], dtype=np.float64)
    return rng.choice(len(tier_keys), size=n, p=probs / probs.sum()).astype(np.int64)


# ---------------------------------------------------------------- synthetic load


@dataclass(frozen=True, slots=True)
class RateProfile:
    """Piecewise-linear demand rate over time: (time_s, rate_rps) knots."""

    knots: tuple[tuple[float, float], ...]

    def rate_rps(self, t_s: FloatArray) -> FloatArray:
        times = np.asarray([k[0] for k in self.knots])
        rates = np.asarray([k[1] for k in self.knots])
        return np.asarray(np.interp(t_s, times, rates), dtype=np.float64)

    @staticmethod
    def constant(rate_rps: float, duration_s: float) -> RateProfile:
        return RateProfile(((0.0, rate_rps), (duration_s, rate_rps)))

    @staticmethod
    def step(levels: Sequence[tuple[float, float]], duration_s: float) -> RateProfile:
        """levels: (start_s, rate_rps) pairs; the rate holds until the next start."""
        knots: list[tuple[float, float]] = []
        for i, (start, rate) in enumerate(levels):
            end = levels[i + 1][0] if i + 1 < len(levels) else duration_s
            knots += [(start, rate), (max(end - 1e-6, start), rate)]
        return RateProfile(tuple(knots))

    @staticmethod
    def diurnal(
        min_rate_rps: float, peak_rate_rps: float, period_s: float, duration_s: float
    ) -> RateProfile:
        """Trough at t=0, peak at period/2: a compressed day."""
        t = np.linspace(0.0, duration_s, max(int(duration_s / 30.0), 2) + 1)
        mid, amp = (peak_rate_rps + min_rate_rps) / 2, (peak_rate_rps - min_rate_rps) / 2
        r = mid - amp * np.cos(2 * np.pi * t / period_s)
        return RateProfile(tuple(zip(t.tolist(), r.tolist(), strict=True)))


def arrivals_from_profile(
    profile: RateProfile,
    duration_s: float,
    rng: np.random.Generator,
    cv: float = 1.0,
) -> FloatArray:
    """Arrival times with the given rate profile; cv=1 Poisson, cv>1 bursty (gamma)."""
    grid = np.linspace(0.0, duration_s, max(int(duration_s), 1) * 4 + 1)
    rate = np.maximum(profile.rate_rps(grid), 0.0)
    cum = np.r_[0.0, np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))]
    total = float(cum[-1])
    if total <= 0:
        return np.zeros(0, dtype=np.float64)
    n_draw = int(total + 10 * np.sqrt(total) * max(cv, 1.0) + 20)
    shape = 1.0 / (cv * cv)
    gaps = rng.gamma(shape, 1.0 / shape, size=n_draw)
    ops = np.cumsum(gaps)
    while ops[-1] < total:
        more = np.cumsum(rng.gamma(shape, 1.0 / shape, size=n_draw)) + ops[-1]
        ops = np.r_[ops, more]
    ops = ops[ops < total]
    return np.asarray(np.interp(ops, cum, grid), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """Token lengths of synthetic requests."""

    prompt_mean: float
    output_mean: float
    dist: str = "fixed"
    """fixed | exponential | lognormal (with `cv`)."""
    cv: float = 1.0
    prompt_max: int | None = None
    output_max: int | None = None

    def draw(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        prompt = self._one(self.prompt_mean, n, rng)
        output = self._one(self.output_mean, n, rng)
        if self.prompt_max is not None:
            prompt = np.minimum(prompt, self.prompt_max)
        if self.output_max is not None:
            output = np.minimum(output, self.output_max)
        return prompt, output

    def _one(self, mean: float, n: int, rng: np.random.Generator) -> IntArray:
        if self.dist == "fixed":
            x = np.full(n, mean)
        elif self.dist == "exponential":
            x = rng.exponential(mean, n)
        else:
            sigma2 = np.log1p(self.cv * self.cv)
            x = rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), n)
        out: IntArray = np.maximum(np.rint(x), 1).astype(np.int64)
        return out


@dataclass(frozen=True, slots=True)
class MixPhase:
    """From `start_s` on, requests are split over tiers by `mix` (a tier-mix inversion is two)."""

    start_s: float
    mix: Mapping[str, float]


def synthetic_workload(
    tier_keys: Sequence[str],
    profile: RateProfile,
    duration_s: float,
    phases: Sequence[MixPhase],
    tokens_by_tier: Mapping[str, TokenSpec],
    rng: np.random.Generator,
    cv: float = 1.0,
    ttft_slo_choices_s: Sequence[float] | None = None,
) -> Workload:
    """Generate arrivals, split them by the mix in force at each arrival, draw tokens."""
    arrival = arrivals_from_profile(profile, duration_s, rng, cv)
    n = arrival.size
    tier_index = _assign_by_phase(arrival, tier_keys, phases, rng)
    prompt = np.zeros(n, dtype=np.int64)
    output = np.zeros(n, dtype=np.int64)
    for t_i, key in enumerate(tier_keys):
        sel = np.flatnonzero(tier_index == t_i)
        prompt[sel], output[sel] = tokens_by_tier[key].draw(sel.size, rng)
    ttft = None
    if ttft_slo_choices_s:
        ttft = rng.choice(np.asarray(ttft_slo_choices_s, dtype=np.float64), size=n)
    return _sorted_workload(tier_keys, arrival, prompt, output, tier_index, duration_s, ttft)


def _assign_by_phase(
    arrival_s: FloatArray,
    tier_keys: Sequence[str],
    phases: Sequence[MixPhase],
    rng: np.random.Generator,
) -> IntArray:
    """Each request's tier, drawn from the mix in force at its arrival (the first phase's
    mix also covers arrivals before it starts)."""
    tier_index = np.zeros(arrival_s.size, dtype=np.int64)
    starts = np.asarray([p.start_s for p in phases])
    phase_of = np.maximum(np.searchsorted(starts, arrival_s, side="right") - 1, 0)
    for p_i, phase in enumerate(phases):
        sel = np.flatnonzero(phase_of == p_i)
        tier_index[sel] = _assign_tiers(sel.size, tier_keys, phase.mix, None, rng)
    return tier_index


def with_ttft_slo_choices(
    workload: Workload, choices_s: Sequence[float], rng: np.random.Generator
) -> Workload:
    """Each request draws its own TTFT SLO uniformly from `choices_s` (PolyServe)."""
    drawn = rng.choice(np.asarray(choices_s, dtype=np.float64), size=workload.num_requests)
    return replace(workload, ttft_slo_s=np.asarray(drawn, dtype=np.float64))


def first_requests(workload: Workload, count: int) -> Workload:
    """The first `count` arrivals; the horizon ends at the last kept arrival."""
    n = min(count, workload.num_requests)
    end_s = float(workload.arrival_s[n - 1]) if n else 0.0
    ttft = None if workload.ttft_slo_s is None else workload.ttft_slo_s[:n]
    return Workload(
        tier_keys=workload.tier_keys,
        arrival_s=workload.arrival_s[:n],
        prompt_tokens=workload.prompt_tokens[:n],
        output_tokens=workload.output_tokens[:n],
        tier_index=workload.tier_index[:n],
        duration_s=end_s,
        ttft_slo_s=ttft,
    )
