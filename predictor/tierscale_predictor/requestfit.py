"""Fit TTFT and TPOT together from what users measure, and test it on unseen load levels.

Input is a list of load levels (`LevelData`): what clients saw at one concurrency
(`vllm bench serve --max-concurrency N`), one Poisson rate, or one burst (all requests at
once), each with mean prompt/output lengths and mean TTFT and TPOT. They come from
`vllm bench serve --save-result` JSON files (`level_from_bench_result`), CSV sweeps, the
calibration kit, or two scrapes of a running deployment's Prometheus histograms
(`level_from_prometheus`).

The forward model is the latency model itself (`latency.predict_at_concurrency` for
closed loops, the same at the concurrency Little's law gives for a rate, the engine for a
burst), so what is fitted is exactly what the planner uses. Fitted: the step floor, the
per-prefill-token and per-decode-sequence costs, the per-output-token cost and the
per-request costs before the scheduler (fixed and per prompt token: the latter only when
the data has two prompt lengths). Kept from the base profile: the KV term, the
compute-bound line and prefill attention (physically derived, docs/predictor.md).
Bounded least squares on relative error of both TTFT and TPOT (scipy), with a weak pull
towards the base profile so that what the data cannot separate (say the step floor and
the per-token cost, which both add to TPOT) stays where the physics put it. Every
parameter stays inside its physical bound.

Held-out error leaves whole load levels out: each level is predicted by a model fitted
on the others, which is what predicting an unseen load means. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from tierscale_predictor import engine, latency, loadgen
from tierscale_predictor.latency import LatencyModel, Provenance
from tierscale_predictor.profiles import PHYSICAL_UPPER_BOUNDS, StepProfile

KINDS = ("concurrency", "rate", "burst")
FIT_PARAMS = (
    "base_s",
    "prefill_s_per_token",
    "decode_s_per_seq",
    "output_s_per_token",
    "request_overhead_s",
    "request_overhead_s_per_prompt_token",
)
_UPPER = {
    "base_s": PHYSICAL_UPPER_BOUNDS["base_s"],
    "prefill_s_per_token": 1e-3,
    "decode_s_per_seq": 1e-3,
    "output_s_per_token": PHYSICAL_UPPER_BOUNDS["output_s_per_token"],
    "request_overhead_s": PHYSICAL_UPPER_BOUNDS["request_overhead_s"],
    "request_overhead_s_per_prompt_token": PHYSICAL_UPPER_BOUNDS[
        "request_overhead_s_per_prompt_token"
    ],
}
_SCALE = {
    "base_s": 5e-3,
    "prefill_s_per_token": 2e-5,
    "decode_s_per_seq": 1e-5,
    "output_s_per_token": 1e-3,
    "request_overhead_s": 1e-3,
    "request_overhead_s_per_prompt_token": 1e-6,
}
"""Typical magnitudes: parameters are solved in these units (conditioning) and pulled
towards the base profile in them."""
PRIOR_WEIGHT = 0.003
"""Weight of the pull towards the base profile (per unit of (x - prior) / (1 + |prior|) in
the scaled units), against relative errors of the levels: it only decides what the data
leaves undetermined."""


class RequestFitError(ValueError):
    """The levels cannot determine the model (too few, or without a load range)."""


@dataclass(frozen=True, slots=True)
class LevelData:
    """What clients saw at one load level (means over its requests; seconds, tokens)."""

    kind: str
    """'concurrency' (closed loop), 'rate' (Poisson, req/s) or 'burst' (all at once)."""
    load: float
    """Clients, requests per second, or requests in the burst."""
    prompt_tokens: float
    output_tokens: float
    ttft_s: float | None
    tpot_s: float | None
    requests: int = 0
    prompts: tuple[int, ...] = ()
    """Per-request lengths when known (a burst is replayed with them)."""
    outputs: tuple[int, ...] = ()
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    tpot_p50_s: float | None = None
    tpot_p99_s: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RequestFitError(f"level kind must be one of {KINDS}, got {self.kind!r}")
        if not (self.load > 0 and self.prompt_tokens >= 1 and self.output_tokens >= 1):
            raise RequestFitError("a level needs load > 0 and mean lengths >= 1 token")
        for name in ("ttft_s", "tpot_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise RequestFitError(f"{name} must be finite and > 0, got {value}")

    @property
    def key(self) -> tuple[str, float]:
        """Levels with the same key are one load level (held out together)."""
        return self.kind, self.load

    @property
    def label(self) -> str:
        load = {
            "concurrency": f"concurrency {self.load:g}",
            "rate": f"{self.load:g} req/s",
            "burst": f"burst of {self.load:g}",
        }[self.kind]
        return f"{load}, {self.prompt_tokens:.0f}/{self.output_tokens:.0f} tokens"


@dataclass(frozen=True, slots=True)
class LevelError:
    level: LevelData
    ttft_pred_s: float
    tpot_pred_s: float

    @property
    def ttft_error(self) -> float | None:
        obs = self.level.ttft_s
        return None if obs is None else self.ttft_pred_s / obs - 1.0

    @property
    def tpot_error(self) -> float | None:
        obs = self.level.tpot_s
        return None if obs is None else self.tpot_pred_s / obs - 1.0


@dataclass(frozen=True, slots=True)
class RequestFitReport:
    levels: int
    load_levels: int
    fitted: tuple[tuple[str, float], ...]
    in_sample: tuple[LevelError, ...]
    held_out: tuple[LevelError, ...]
    """Each load level predicted by a model fitted without it (empty with < 3 levels)."""
    notes: tuple[str, ...] = ()

    @property
    def held_out_mape(self) -> tuple[float | None, float | None]:
        return mape(self.held_out)

    @property
    def in_sample_mape(self) -> tuple[float | None, float | None]:
        return mape(self.in_sample)


@dataclass(frozen=True, slots=True)
class RequestFitResult:
    model: LatencyModel
    report: RequestFitReport


def mape(errors: Sequence[LevelError]) -> tuple[float | None, float | None]:
    """Mean |relative error| of TTFT and of TPOT over the levels that observed them."""
    ttft = [abs(e.ttft_error) for e in errors if e.ttft_error is not None]
    tpot = [abs(e.tpot_error) for e in errors if e.tpot_error is not None]
    return (
        float(np.mean(ttft)) if ttft else None,
        float(np.mean(tpot)) if tpot else None,
    )


# ---- forward model ------------------------------------------------------------------


def profile_of(model: LatencyModel, name: str = "fitted") -> StepProfile:
    """The engine profile a latency model stands for (to replay bursts)."""
    kv = model.kv_capacity_tokens if model.kv_capacity_tokens is not None else 10**7
    return StepProfile(
        name=name,
        model="",
        gpu="",
        base_s=model.base_s,
        prefill_s_per_token=model.prefill_s_per_token,
        decode_s_per_seq=model.decode_s_per_seq,
        context_s_per_token=model.context_s_per_token,
        kv_capacity_tokens=kv,
        max_num_batched_tokens=model.max_num_batched_tokens,
        max_num_seqs=model.max_num_seqs,
        decode_knee_seqs=model.decode_knee_seqs,
        decode_s_per_seq_above_knee=model.decode_s_per_seq_above_knee,
        compute_s_per_token=model.compute_s_per_token,
        compute_floor_s=model.compute_floor_s,
        attention_s_per_token_pair=model.attention_s_per_token_pair,
        request_overhead_s=model.request_overhead_s,
        request_overhead_s_per_prompt_token=model.request_overhead_s_per_prompt_token,
        first_token_overhead_s=model.first_token_overhead_s,
        output_s_per_token=model.output_s_per_token,
    )


def predict_level(
    model: LatencyModel, level: LevelData, *, forward: str = "engine"
) -> tuple[float, float]:
    """Mean TTFT and TPOT the model predicts for one level (corrections applied).

    forward='engine' replays the level on the engine model (closed loop, or Poisson
    arrivals from a seed fixed by the level, or the burst): exact for the model, including
    the bunching of identical closed-loop requests that the mean-field formulas miss.
    forward='analytic' uses `latency.predict_closed_loop` (fast, mean field; what
    `fit_levels` fits with: the engine's objective is piecewise constant in the
    parameters, since steps are discrete, which defeats a gradient-based fit)."""
    p, o = level.prompt_tokens, level.output_tokens
    if level.kind == "burst":
        return _burst(model, level)
    if forward == "engine":
        return _replay(model, level)
    if level.kind == "concurrency":
        pred = latency.predict_closed_loop(model, level.load, p, o)
        return pred.ttft_s, pred.tpot_s
    if level.kind == "rate":
        # Little's law: requests in the system = rate x time in the system; iterate.
        first = latency.predict_closed_loop(model, 1.0, p, o)
        ttft, tpot = first.ttft_s, first.tpot_s
        for _ in range(6):
            clients = max(level.load * (ttft + (o - 1.0) * tpot), 1e-3)
            pred = latency.predict_closed_loop(model, clients, p, o)
            ttft, tpot = pred.ttft_s, pred.tpot_s
        return ttft, tpot
    return _burst(model, level)


REPLAY_REQUESTS = 160
"""Requests per replayed level (after the closed loop's warm-up)."""


def _replay(model: LatencyModel, level: LevelData) -> tuple[float, float]:
    profile = profile_of(model)
    p, o = max(round(level.prompt_tokens), 1), max(round(level.output_tokens), 1)
    if level.kind == "concurrency":
        clients = max(round(level.load), 1)
        n = max(REPLAY_REQUESTS, 2 * clients)
        timings = loadgen.closed_loop(profile, clients, p, o, n)
    else:
        rng = np.random.default_rng(round(level.load * 1000) + 7919 * p + o)
        requests = loadgen.poisson_requests(rng, level.load, REPLAY_REQUESTS + 20, [p], [o])
        timings = [t for t in engine.simulate(profile, requests) if t.request_id >= 20]
    ttft = float(np.mean([t.ttft_s for t in timings]))
    tpots = [t.tpot_s for t in timings if t.output_tokens > 1]
    corr = model.correction
    return corr.ttft(ttft), corr.tpot(float(np.mean(tpots))) if tpots else 0.0


def _burst(model: LatencyModel, level: LevelData) -> tuple[float, float]:
    n = int(level.load)
    prompts = level.prompts or (round(level.prompt_tokens),) * n
    outputs = level.outputs or (round(level.output_tokens),) * n
    requests = [
        engine.EngineRequest(i, 0.0, max(int(pp), 1), max(int(oo), 1))
        for i, (pp, oo) in enumerate(zip(prompts, outputs, strict=True))
    ]
    timings = engine.simulate(profile_of(model), requests)
    ttft = float(np.mean([t.ttft_s for t in timings]))
    tpots = [t.tpot_s for t in timings if t.output_tokens > 1]
    tpot = float(np.mean(tpots)) if tpots else 0.0
    corr = model.correction
    return corr.ttft(ttft), corr.tpot(tpot) if tpots else 0.0


# ---- fitting ------------------------------------------------------------------------


def _with(base: LatencyModel, names: Sequence[str], values: np.ndarray) -> LatencyModel:
    changes: dict[str, Any] = {n: float(v) for n, v in zip(names, values, strict=True)}
    changes["compute_floor_s"] = min(base.compute_floor_s, changes.get("base_s", base.base_s))
    return replace(base, **changes)


def _residuals(model: LatencyModel, levels: Sequence[LevelData], forward: str) -> list[float]:
    out: list[float] = []
    for level in levels:
        ttft, tpot = predict_level(model, level, forward=forward)
        if level.ttft_s is not None:
            out.append(ttft / level.ttft_s - 1.0 if math.isfinite(ttft) else 10.0)
        if level.tpot_s is not None:
            out.append(tpot / level.tpot_s - 1.0 if math.isfinite(tpot) else 10.0)
    return out


def _free_params(levels: Sequence[LevelData]) -> tuple[str, ...]:
    names = list(FIT_PARAMS)
    prompts = {round(level.prompt_tokens) for level in levels}
    if len(prompts) < 2:
        names.remove("request_overhead_s_per_prompt_token")
    if all(level.ttft_s is None for level in levels):
        names.remove("request_overhead_s")
        if "request_overhead_s_per_prompt_token" in names:
            names.remove("request_overhead_s_per_prompt_token")
    return tuple(names)


def _fit_once(
    base: LatencyModel, levels: Sequence[LevelData], names: Sequence[str], forward: str
) -> LatencyModel:
    scale = np.array([_SCALE[n] for n in names])
    return _with(base, names, _solve(base, levels, names, forward) * scale)


def _solve(
    base: LatencyModel, levels: Sequence[LevelData], names: Sequence[str], forward: str
) -> np.ndarray:
    scale = np.array([_SCALE[n] for n in names])
    prior = np.array([getattr(base, n) for n in names]) / scale
    upper = np.array([_UPPER[n] for n in names]) / scale
    lower = np.zeros(len(names))
    lower[list(names).index("base_s")] = 1e-4 / _SCALE["base_s"]
    x0 = np.clip(prior, lower, upper)

    def residuals(x: np.ndarray) -> np.ndarray:
        model = _with(base, names, x * scale)
        fit = _residuals(model, levels, forward)
        pull = PRIOR_WEIGHT * (x - prior) / (1.0 + np.abs(prior))
        return np.concatenate([np.asarray(fit), pull])

    solution = least_squares(residuals, x0, bounds=(lower, upper), max_nfev=200)
    return np.asarray(solution.x)


def fit_levels(
    levels: Sequence[LevelData],
    *,
    base: LatencyModel,
    source: str = "levels",
    fitted_at: str = "",
    hold_out: bool = True,
    forward: str = "analytic",
) -> RequestFitResult:
    """Fit TTFT and TPOT terms to the levels; score each load level held out."""
    levels = list(levels)
    if not levels:
        raise RequestFitError("no load levels to fit")
    if all(level.ttft_s is None and level.tpot_s is None for level in levels):
        raise RequestFitError("no level has a measured TTFT or TPOT")
    keys = sorted({level.key for level in levels})
    names = _free_params(levels)
    start = replace(base, correction=latency.Correction())
    model = _fit_once(start, levels, names, forward)
    in_sample = tuple(LevelError(lv, *predict_level(model, lv, forward=forward)) for lv in levels)
    held: list[LevelError] = []
    notes: list[str] = []
    if hold_out and len(keys) >= 3:
        for key in keys:
            train = [lv for lv in levels if lv.key != key]
            partial = _fit_once(start, train, _free_params(train), forward)
            held += [
                LevelError(lv, *predict_level(partial, lv, forward=forward))
                for lv in levels
                if lv.key == key
            ]
    elif hold_out:
        notes.append(f"{len(keys)} load levels: at least 3 are needed to hold one out")
    if "request_overhead_s_per_prompt_token" not in names:
        notes.append("one prompt length only: the per-prompt-token overhead is the base's")
    ttft_mape, tpot_mape = mape(in_sample)
    fitted = tuple((n, float(getattr(model, n))) for n in names)
    model = replace(
        model,
        provenance=Provenance(
            source, fitted_at, len(levels), None, _mean_or_none(ttft_mape, tpot_mape)
        ),
    )
    report = RequestFitReport(len(levels), len(keys), fitted, in_sample, tuple(held), tuple(notes))
    return RequestFitResult(model, report)


def _mean_or_none(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return float(np.mean(values)) if values else None


# ---- inputs users have ----------------------------------------------------------------


def level_from_bench_result(data: Mapping[str, Any], *, origin: str) -> LevelData:
    """One `vllm bench serve --save-result` JSON (or benchmark_serving.py's): its real
    fields `input_lens`, `output_lens`, `ttfts`, `itls` (seconds), `max_concurrency`,
    `request_rate` ("inf" or a number), `num_prompts` or `completed`. Failed requests
    (`errors` non-empty, or a TTFT of 0) are left out."""

    def field(name: str) -> Any:
        if name not in data:
            raise RequestFitError(f"{origin}: missing field {name!r} (save with --save-result)")
        return data[name]

    inputs, outputs = field("input_lens"), field("output_lens")
    ttfts, itls = field("ttfts"), field("itls")
    errors = data.get("errors") or [""] * len(ttfts)
    if not (len(inputs) == len(outputs) == len(ttfts) == len(itls) == len(errors)):
        raise RequestFitError(f"{origin}: per-request lists have different lengths")
    ok = [
        i
        for i in range(len(ttfts))
        if not errors[i] and isinstance(ttfts[i], int | float) and ttfts[i] > 0
    ]
    if not ok:
        raise RequestFitError(f"{origin}: no successful request")
    prompts = [int(inputs[i]) for i in ok]
    outs = [int(outputs[i]) for i in ok]
    ttft = np.array([float(ttfts[i]) for i in ok])
    tpots = np.array([float(sum(itls[i])) / (outs[k] - 1) for k, i in enumerate(ok) if outs[k] > 1])
    concurrency = data.get("max_concurrency")
    rate = data.get("request_rate", "inf")
    rate_f = math.inf if rate in (None, "inf") else float(rate)
    if concurrency:
        kind, load = "concurrency", float(concurrency)
    elif math.isfinite(rate_f):
        kind, load = "rate", rate_f
    else:
        kind, load = "burst", float(len(ok))
    return LevelData(
        kind=kind,
        load=load,
        prompt_tokens=float(np.mean(prompts)),
        output_tokens=float(np.mean(outs)),
        ttft_s=float(ttft.mean()),
        tpot_s=float(tpots.mean()) if tpots.size else None,
        requests=len(ok),
        prompts=tuple(prompts),
        outputs=tuple(outs),
        ttft_p50_s=float(np.percentile(ttft, 50)),
        ttft_p99_s=float(np.percentile(ttft, 99)),
        tpot_p50_s=float(np.percentile(tpots, 50)) if tpots.size else None,
        tpot_p99_s=float(np.percentile(tpots, 99)) if tpots.size else None,
        source=origin,
    )


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_prometheus_text(text: str) -> dict[str, float]:
    """Sum every sample of each series name over its labels (text format 0.0.4)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2) or "", match.group(3)
        if name.endswith("_bucket") and "le=" in labels:
            le = re.search(r'le="([^"]+)"', labels)
            name = f"{name}[{le.group(1) if le else ''}]"
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return totals


_PROM = {
    "ttft": "vllm:time_to_first_token_seconds",
    "tpot": "vllm:request_time_per_output_token_seconds",
    "prompt": "vllm:request_prompt_tokens",
    "output": "vllm:request_generation_tokens",
}


def level_from_prometheus(
    before: Mapping[str, float], after: Mapping[str, float], window_s: float, *, origin: str
) -> LevelData:
    """A rate level from two scrapes of a deployment's /metrics (one replica's, or summed
    over a pool's: then divide the rate by the replicas yourself): the histograms' _sum
    and _count deltas give mean TTFT, TPOT and lengths; the count delta over the window
    the request rate. Server-side TTFT misses the client's HTTP time (docs/testbed.md)."""
    if not window_s > 0:
        raise RequestFitError(f"{origin}: the scrapes must be apart in time")

    def delta(metric: str, suffix: str) -> float:
        name = f"{metric}_{suffix}"
        if name not in after:
            raise RequestFitError(f"{origin}: no series {name} in the scrape")
        return after[name] - before.get(name, 0.0)

    n = delta(_PROM["ttft"], "count")
    if n <= 0:
        raise RequestFitError(f"{origin}: no request finished its first token in the window")
    done = delta(_PROM["output"], "count")
    tpot_n = delta(_PROM["tpot"], "count")
    return LevelData(
        kind="rate",
        load=done / window_s if done > 0 else n / window_s,
        prompt_tokens=max(delta(_PROM["prompt"], "sum") / max(done, 1.0), 1.0),
        output_tokens=max(delta(_PROM["output"], "sum") / max(done, 1.0), 1.0),
        ttft_s=delta(_PROM["ttft"], "sum") / n,
        tpot_s=delta(_PROM["tpot"], "sum") / tpot_n if tpot_n > 0 else None,
        requests=int(done),
        source=origin,
    )
