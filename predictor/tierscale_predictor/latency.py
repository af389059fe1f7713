"""Latency model of one vLLM replica: step-time coefficients + limits + tails + correction.

The mean behaviour is closed-form. With step time s = c0 + a*prefill + dec(B) + k*context,
Poisson arrivals at rate r of requests with P prompt and O output tokens put, per step,
r*P*s prefill tokens and B = r*(O-1)*s decoding sequences (Little's law), each holding
P + O/2 KV tokens on average. Hence s = c0 / (1 - u) with the busy fraction
u = r * w, w = a*P + b*(O-1) + k*(P + (O-1)*(P + O/2)) the seconds of step time one request
adds (`capacity.work_s_per_request`). The tails are what SLOs are about, so on top of the
mean come: per-request TPOT at a percentile (how many other requests' prefills land inside
this request's decode steps: Poisson with mean r*(O-1)*s), and TTFT at a percentile (own
prefill of the percentile prompt, in chunks, plus waiting for the running step and for
the prefills ahead, growing like u/(1-u)). Tail constants are fitted offline against the
engine model (`TailParams`), and an online multiplicative correction tracks reality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

from tierscale_predictor.profiles import StepProfile

SCHEMA_VERSION = 1
"""Version of the LatencyModel layout (model files refuse other versions)."""

_STD_NORMAL = NormalDist()
_Z99 = 2.3263478740408408
_O_CLASSES = 16
"""Equal-probability classes of output length for the per-request TPOT mixture."""


DEFAULT_PROMPT_LOG_SIGMA = 0.6
"""Spread assumed for prompt lengths when no p99 is known (Azure traces: 0.64 and 0.64)."""
DEFAULT_OUTPUT_LOG_SIGMA = 1.0
"""Spread assumed for output lengths when no p99 is known (Azure traces: code 1.32,
conversation 0.50). Per-request TPOT tails come from short outputs that meet a long
prefill step, so assuming no spread would be badly optimistic."""


@dataclass(frozen=True, slots=True)
class WorkloadShape:
    """Request lengths of a tier (or of a mix of tiers) in tokens, taken as lognormal."""

    prompt_tokens_mean: float
    output_tokens_mean: float
    prompt_tokens_p99: float | None = None
    output_tokens_p99: float | None = None
    components: tuple[tuple[float, WorkloadShape], ...] = ()
    """For a mix (`mix_shapes`): (share of requests, shape) of each part; () otherwise."""

    def __post_init__(self) -> None:
        if not (self.prompt_tokens_mean >= 1.0 and self.output_tokens_mean >= 1.0):
            raise ValueError("prompt_tokens_mean and output_tokens_mean must be >= 1")

    @property
    def prompt_tokens_tail(self) -> float:
        """The long prompt that sets TTFT tails: the p99 (of the assumed lognormal if the
        p99 is not known)."""
        p99 = self.prompt_tokens_p99
        if p99 is None:
            sigma = DEFAULT_PROMPT_LOG_SIGMA
            p99 = self.prompt_tokens_mean * math.exp(_Z99 * sigma - sigma * sigma / 2.0)
        return max(p99, self.prompt_tokens_mean)


def mix_shapes(parts: Sequence[tuple[float, WorkloadShape]]) -> WorkloadShape:
    """The shape of a mix of tiers' traffic, each part weighted by its request rate.

    Keeps the parts, so tails see the real mixture (e.g. half of the requests with very
    short outputs) rather than one lognormal through its mean and p99.
    """
    flat: list[tuple[float, WorkloadShape]] = []
    for weight, shape in parts:
        if weight < 0.0 or not math.isfinite(weight):
            raise ValueError(f"mix weights must be finite and >= 0, got {weight}")
        if shape.components:
            flat += [(weight * w, c) for w, c in shape.components]
        elif weight > 0.0:
            flat.append((weight, shape))
    total = sum(w for w, _ in flat)
    if total <= 0.0:
        raise ValueError("a mix needs at least one part with a positive weight")
    if len(flat) == 1:
        return flat[0][1]
    norm = tuple((w / total, c) for w, c in flat)
    prompt_mean = sum(w * c.prompt_tokens_mean for w, c in norm)
    output_mean = sum(w * c.output_tokens_mean for w, c in norm)
    prompt_p99 = _mixture_p99([(w, *_lognormal_params(c, "prompt")) for w, c in norm])
    output_p99 = _mixture_p99([(w, *_lognormal_params(c, "output")) for w, c in norm])
    return WorkloadShape(prompt_mean, output_mean, prompt_p99, output_p99, norm)


@dataclass(frozen=True, slots=True)
class SloTarget:
    """A tier's latency objective at a percentile; TTFT includes queueing."""

    ttft_s: float
    tpot_s: float
    percentile: float = 99.0
    miss_frac: float | None = None
    """The share of requests allowed to miss either latency (1 - the attainment target).
    None: each latency is held at `percentile`. Set: the checks split it by need
    (`_miss_split`): TPOT may miss what the model predicts at the load, TTFT the rest,
    and `percentile` is where predictions are reported."""
    tpot_share_frac: tuple[float, float] = (0.5, 0.5)
    """With `miss_frac`: the least and the most share of it TPOT is given; TTFT gets the
    rest. (0.5, 0.5) is the equal split (each latency at 100 - 50 miss_frac); (0, 1) lets
    either latency take all of it."""


@dataclass(frozen=True, slots=True)
class TailParams:
    """Dimensionless tail constants, fitted against the engine model (docs/predictor.md)."""

    ttft_residual_steps: float = 1.0
    """Waiting for the running step at the percentile, in length-biased prefill steps."""
    ttft_queue_steps: float = 1.0
    """Extra waiting behind other prefills, in own-prefill times, times rho/(1-rho) with
    rho the time share of prefill-carrying steps."""
    tpot_interference: float = 1.0
    """Prefills landing in a request's decode steps, relative to Poisson, at busy 1
    (1 + (x - 1) * u at busy u): long steps make arrivals bunch as load grows."""
    batch_limit_frac: float = 0.9
    """Usable fraction of max_num_seqs / KV capacity before queueing explodes."""
    busy_limit_frac: float = 0.9
    """Highest busy fraction a replica is planned to (1.0: no limit but saturation). Near
    u = 1 a few per cent of error in the model's work per request is the difference
    between a steady batch and a growing one: the conversation shape with a 1 s / 50 ms
    SLO met it in the model up to u = 0.988, where the step engine's TPOT p50 was 54 ms."""
    batch_spread: float = 1.0
    """Weight of the batch's swings in the TPOT tail (`_batch_spread`; 0: left out)."""
    compute_excess: float = 1.0
    """Weight of what compute-bound prefill steps cost above the memory line in the mean
    step (`_prefill_compute_excess_s`; 0: left out)."""
    ttft_residual_bounded: float = 0.0
    """How far the running step's residual in TTFT keeps its p99 size below p99 (0: it
    shrinks with the percentile like the queue; 1: never below its p99 size). See `_ttft`."""


@dataclass(frozen=True, slots=True)
class Correction:
    """Online correction: predicted = raw * mult + add (1.0 and 0.0 = trust the model).

    The multiplier tracks errors that scale with the latency (a step model off by a
    factor); the additive part a fixed cost the model misses (HTTP, tokenisation, a
    per-token CPU cost), which no multiplier can fix at every load."""

    ttft_mult: float = 1.0
    tpot_mult: float = 1.0
    ttft_add_s: float = 0.0
    tpot_add_s: float = 0.0

    def ttft(self, raw_s: float) -> float:
        return raw_s * self.ttft_mult + self.ttft_add_s

    def tpot(self, raw_s: float) -> float:
        return raw_s * self.tpot_mult + self.tpot_add_s


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the coefficients came from, for model files and status messages."""

    source: str
    fitted_at: str = ""
    rows: int = 0
    r2: float | None = None
    mape: float | None = None


@dataclass(frozen=True)
class LatencyModel:
    """Everything needed to predict one replica's latency: hashable, so results can cache."""

    base_s: float
    prefill_s_per_token: float
    decode_s_per_seq: float
    context_s_per_token: float
    decode_knee_seqs: int = 0
    decode_s_per_seq_above_knee: float = 0.0
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 1024
    kv_capacity_tokens: int | None = None
    """None: unknown (e.g. fitted from a load sweep); no KV limit is applied."""
    tail: TailParams = field(default_factory=TailParams)
    correction: Correction = field(default_factory=Correction)
    schema_version: int = SCHEMA_VERSION
    provenance: Provenance = field(default_factory=lambda: Provenance("defaults"))
    name: str = ""
    compute_s_per_token: float = 0.0
    """Compute-bound line: every token (prefill or decode) through the linear layers."""
    compute_floor_s: float = 0.0
    """Part of base_s the compute-bound line hides (weight reads); <= base_s."""
    attention_s_per_token_pair: float = 0.0
    """Prefill attention per (query, key) pair."""
    request_overhead_s: float = 0.0
    """Before the scheduler: HTTP, tokenisation, hand-over to the engine."""
    request_overhead_s_per_prompt_token: float = 0.0
    first_token_overhead_s: float = 0.0
    output_s_per_token: float = 0.0
    """Per output token, outside the step (detokenise, stream): adds to TPOT."""

    def __post_init__(self) -> None:
        coeffs = (
            self.base_s,
            self.prefill_s_per_token,
            self.decode_s_per_seq,
            self.context_s_per_token,
            self.decode_s_per_seq_above_knee,
            self.compute_s_per_token,
            self.compute_floor_s,
            self.attention_s_per_token_pair,
            self.request_overhead_s,
            self.request_overhead_s_per_prompt_token,
            self.first_token_overhead_s,
            self.output_s_per_token,
        )
        if not all(math.isfinite(c) and c >= 0.0 for c in coeffs) or self.base_s <= 0.0:
            raise ValueError("step coefficients must be finite, >= 0, and base_s > 0")
        if self.compute_floor_s > self.base_s:
            raise ValueError("compute_floor_s must be <= base_s")
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1:
            raise ValueError("max_num_seqs and max_num_batched_tokens must be >= 1")

    @classmethod
    def from_profile(cls, profile: StepProfile, tail: TailParams | None = None) -> LatencyModel:
        return cls(
            base_s=profile.base_s,
            prefill_s_per_token=profile.prefill_s_per_token,
            decode_s_per_seq=profile.decode_s_per_seq,
            context_s_per_token=profile.context_s_per_token,
            decode_knee_seqs=profile.decode_knee_seqs,
            decode_s_per_seq_above_knee=profile.decode_s_per_seq_above_knee,
            max_num_batched_tokens=profile.max_num_batched_tokens,
            max_num_seqs=profile.max_num_seqs,
            kv_capacity_tokens=profile.kv_capacity_tokens,
            tail=DEFAULT_TAIL if tail is None else tail,
            provenance=Provenance(source=f"profile:{profile.name}"),
            name=profile.name,
            compute_s_per_token=profile.compute_s_per_token,
            compute_floor_s=profile.compute_floor_s,
            attention_s_per_token_pair=profile.attention_s_per_token_pair,
            request_overhead_s=profile.request_overhead_s,
            request_overhead_s_per_prompt_token=profile.request_overhead_s_per_prompt_token,
            first_token_overhead_s=profile.first_token_overhead_s,
            output_s_per_token=profile.output_s_per_token,
        )

    def with_correction(self, correction: Correction) -> LatencyModel:
        return replace(self, correction=correction)

    @property
    def has_knee(self) -> bool:
        return self.decode_knee_seqs > 0

    def decode_s(self, decode_seqs: float) -> float:
        knee = self.decode_knee_seqs
        if knee <= 0 or decode_seqs <= knee:
            return self.decode_s_per_seq * decode_seqs
        return self.decode_s_per_seq * knee + self.decode_s_per_seq_above_knee * (
            decode_seqs - knee
        )

    def step_s(
        self,
        prefill_tokens: float,
        decode_seqs: float,
        context_tokens: float,
        attention_pairs: float = 0.0,
    ) -> float:
        """One engine step, as `StepProfile.step_s` (roofline of memory and compute lines)."""
        memory = self.prefill_s_per_token * prefill_tokens + self.decode_s(decode_seqs)
        compute = self.compute_s_per_token * (prefill_tokens + decode_seqs) - self.compute_floor_s
        return (
            self.base_s
            + self.context_s_per_token * context_tokens
            + self.attention_s_per_token_pair * attention_pairs
            + max(memory, compute)
        )

    def first_token_extra_s(self, prompt_tokens: float) -> float:
        """TTFT the engine steps do not see: before the scheduler and on the first token."""
        return (
            self.request_overhead_s
            + self.request_overhead_s_per_prompt_token * prompt_tokens
            + self.first_token_overhead_s
            + self.output_s_per_token
        )

    @property
    def has_compute_line(self) -> bool:
        return self.compute_s_per_token > 0.0

    @property
    def marginal_decode_s_per_seq(self) -> float:
        """Decode cost of one more sequence in a large batch (above the knee)."""
        return self.decode_s_per_seq_above_knee if self.has_knee else self.decode_s_per_seq

    @property
    def effective_base_s(self) -> float:
        """Base of the linear upper bound c0' + b_hi*B >= dec(B) (concave decode cost)."""
        if not self.has_knee:
            return self.base_s
        extra = (self.decode_s_per_seq - self.decode_s_per_seq_above_knee) * self.decode_knee_seqs
        return self.base_s + max(extra, 0.0)


DEFAULT_TAIL = TailParams(
    ttft_residual_steps=0.65,
    ttft_queue_steps=1.02,
    tpot_interference=1.79,
    batch_limit_frac=0.9,
)
"""Fitted (least squares on log error) to the engine model's p99 TTFT/TPOT for the three
bundled profiles x three lognormal shapes (code-like, conversation-like, short) at 20-80%
busy; `bench/predictor.py` reprints the comparison (docs/predictor.md)."""


@dataclass(frozen=True, slots=True)
class LatencyPrediction:
    """Predicted latency of one replica (percentiles unless stated), plus its load state."""

    ttft_s: float
    tpot_s: float
    mean_batch: float
    """Mean sequences per step (decoding + prefilling)."""
    busy_frac: float
    """u = rate * work_s_per_request (the planner's linear load measure)."""
    stable: bool
    """False when the load exceeds what the replica can serve (latency grows unbounded)."""


UNSTABLE_S = math.inf


def _work_lines(
    model: LatencyModel,
    prompt_mean: float,
    prompt_ex2: float,
    decodes_mean: float,
    decode_context_mean: float,
) -> tuple[float, float]:
    """Step seconds one request adds on the memory-bound and on the compute-bound line."""
    shared = model.context_s_per_token * (prompt_mean + decode_context_mean)
    # Its prefill attends to P (P + 1) / 2 (query, key) pairs, however it is chunked.
    shared += model.attention_s_per_token_pair * 0.5 * (prompt_ex2 + prompt_mean)
    memory = (
        model.prefill_s_per_token * prompt_mean
        + model.marginal_decode_s_per_seq * decodes_mean
        + shared
    )
    compute = model.compute_s_per_token * (prompt_mean + decodes_mean) + shared
    return memory, compute


def work_s(model: LatencyModel, prompt_tokens: float, output_tokens: float) -> float:
    """Step seconds one request adds (upper bound: the busier of the two step lines)."""
    p, o = prompt_tokens, output_tokens
    decodes = max(o - 1.0, 0.0)
    memory, compute = _work_lines(model, p, p * p, decodes, decodes * (p + o / 2.0))
    return max(memory, compute)


def work_s_of_shape(model: LatencyModel, shape: WorkloadShape) -> float:
    """Step seconds one request of this shape (or mix) adds, on average.

    For a mix, the share-weighted sum of its parts' work, so the planner's constraint
    sum_j rate_j * work_j stays exactly linear in rates (each part's work is the busier
    of its memory and compute lines: an upper bound of the mix's)."""
    parts = shape.components or ((1.0, shape),)
    total = 0.0
    for weight, part in parts:
        m = _part_stats(part)
        total += weight * max(
            *_work_lines(model, m.prompt_mean, m.prompt_ex2, m.decodes_mean, m.context_mean)
        )
    return total


_EXCESS_ITERATIONS = 3
"""Fixed-point passes of the mean step with the compute excess (it grows with the batch,
the batch with the step); each pass moves it less, from below."""


def mean_step_s(model: LatencyModel, rate_rps: float, shape: WorkloadShape) -> float:
    """Mean step time at a Poisson rate: the larger of the memory-bound solution (exact
    for the piecewise-linear decode cost, plus what compute-bound prefill steps cost above
    it) and the compute-bound one."""
    memory = _mean_step_memory_s(model, rate_rps, shape)
    if not model.has_compute_line or not math.isfinite(memory):
        return memory
    m = _shape_stats(shape)
    weight = model.tail.compute_excess
    if weight > 0.0 and rate_rps > 0.0:
        base = memory
        for _ in range(_EXCESS_ITERATIONS):
            batch = rate_rps * m.decodes_mean * memory
            extra_s = weight * _prefill_compute_excess_s(model, m, batch)
            memory = _mean_step_memory_s(model, rate_rps, shape, extra_s)
            if not math.isfinite(memory):
                return UNSTABLE_S
        memory = max(memory, base)
    _, per_request = _work_lines(
        model, m.prompt_mean, m.prompt_ex2, m.decodes_mean, m.decode_context_mean
    )
    denom = 1.0 - rate_rps * per_request
    if denom <= 0.0:
        return UNSTABLE_S
    return max(memory, (model.base_s - model.compute_floor_s) / denom)


def _prefill_compute_excess_s(model: LatencyModel, stats: _ShapeStats, batch: float) -> float:
    """Mean seconds per request that its prefill steps cost above the memory line.

    A step with n prefill tokens and B decoding sequences costs the busier of the memory
    line (p n + dec(B)) and the compute line (c (n + B) - floor). Steps without prefill
    stay memory-bound at these batches, but a long prompt's chunk tips its step over:
    excess max(0, (c - p) n - F), F = floor + dec(B) - c B, so prompts above F / (c - p)
    tokens (about 650 on the H100 profile with 120 sequences decoding) cost more than the
    memory line says. On the step engine that was the mean step's shortfall near
    saturation: 1,000 / 650-token requests, cv 1.6, 82 % busy, 19.8 ms on the engine
    against 16.7 ms in the model without it (`bench/attainment_fidelity.py --probe`).
    Averaged over the lognormal prompts in closed form, one chunk per prompt (a prompt
    past the token budget is split, which costs a little less than this)."""
    slope = model.compute_s_per_token - model.prefill_s_per_token
    if slope <= 0.0:
        return 0.0
    floor = max(
        model.compute_floor_s + model.decode_s(batch) - model.compute_s_per_token * batch, 0.0
    )
    total = 0.0
    for weight, mu, sigma in stats.prompt_parts:
        mean = math.exp(mu + 0.5 * sigma * sigma)
        if floor <= 0.0:
            total += weight * slope * mean
        elif sigma <= 0.0:
            total += weight * max(slope * mean - floor, 0.0)
        else:
            log_t = math.log(floor / slope)
            above = _STD_NORMAL.cdf((mu + sigma * sigma - log_t) / sigma)
            count = _STD_NORMAL.cdf((mu - log_t) / sigma)
            total += weight * max(slope * mean * above - floor * count, 0.0)
    return total


def _mean_step_memory_s(
    model: LatencyModel, rate_rps: float, shape: WorkloadShape, extra_s: float = 0.0
) -> float:
    """`extra_s`: step seconds per request on top of the memory line's (the compute excess)."""
    m = _shape_stats(shape)
    k = model.context_s_per_token
    attention = model.attention_s_per_token_pair * 0.5 * (m.prompt_ex2 + m.prompt_mean)
    linear = rate_rps * (
        model.prefill_s_per_token * m.prompt_mean
        + k * (m.prompt_mean + m.decode_context_mean)
        + attention
        + extra_s
    )
    per_step_seqs = rate_rps * m.decodes_mean  # B = per_step_seqs * s
    denom = 1.0 - linear - model.decode_s_per_seq * per_step_seqs
    if denom > 0.0:
        s = model.base_s / denom
        if not model.has_knee or per_step_seqs * s <= model.decode_knee_seqs:
            return s
    if not model.has_knee:
        return UNSTABLE_S
    denom = 1.0 - linear - model.decode_s_per_seq_above_knee * per_step_seqs
    if denom <= 0.0:
        return UNSTABLE_S
    return model.effective_base_s / denom


def _z(percentile: float) -> float:
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    return _STD_NORMAL.inv_cdf(percentile / 100.0)


def batch_limit(model: LatencyModel, shape: WorkloadShape) -> float:
    """Decoding sequences the replica can hold before admission queues build up."""
    seqs = float(model.max_num_seqs)
    stats = _shape_stats(shape)
    if model.kv_capacity_tokens is not None and stats.decodes_mean > 0.0:
        per_seq = stats.decode_context_mean / stats.decodes_mean  # KV of a decoding sequence
        seqs = min(seqs, model.kv_capacity_tokens / per_seq)
    return seqs * model.tail.batch_limit_frac


def _lognormal(mean: float, p99: float | None, default_sigma: float) -> tuple[float, float]:
    """(mu, sigma) of a lognormal with this mean and p99 (default spread if p99 unknown)."""
    if p99 is None:
        sigma = default_sigma
    elif p99 <= mean:
        sigma = 0.0
    else:
        disc = _Z99 * _Z99 - 2.0 * math.log(p99 / mean)
        sigma = _Z99 - math.sqrt(disc) if disc > 0.0 else _Z99
    return math.log(mean) - sigma * sigma / 2.0, sigma


def length_cv(mean: float, p99: float | None, which: str) -> float:
    """Coefficient of variation of request lengths with this mean and p99 (`which`:
    "prompt" or "output"), as the lognormal the predictor assumes for them."""
    default = DEFAULT_PROMPT_LOG_SIGMA if which == "prompt" else DEFAULT_OUTPUT_LOG_SIGMA
    _, sigma = _lognormal(mean, p99, default)
    return math.sqrt(math.expm1(sigma * sigma))


def _lognormal_params(shape: WorkloadShape, which: str) -> tuple[float, float]:
    if which == "prompt":
        return _lognormal(
            shape.prompt_tokens_mean, shape.prompt_tokens_p99, DEFAULT_PROMPT_LOG_SIGMA
        )
    return _lognormal(shape.output_tokens_mean, shape.output_tokens_p99, DEFAULT_OUTPUT_LOG_SIGMA)


def _lognormal_survival(parts: Sequence[tuple[float, float, float]], x: float) -> float:
    """P(X > x) for a mixture of (weight, mu, sigma) lognormals."""
    if x <= 0.0:
        return 1.0
    total = 0.0
    log_x = math.log(x)
    for weight, mu, sigma in parts:
        if sigma == 0.0:
            total += weight if log_x < mu else 0.0
        else:
            total += weight * 0.5 * math.erfc((log_x - mu) / (sigma * math.sqrt(2.0)))
    return total


def _mixture_p99(parts: Sequence[tuple[float, float, float]]) -> float:
    return _mixture_quantile(parts, 0.01)


def _mixture_quantile(parts: Sequence[tuple[float, float, float]], survival: float) -> float:
    """The length a mixture of lognormals exceeds with probability `survival`."""
    lo, hi = 1.0, max(math.exp(mu + 6.0 * sigma) for _, mu, sigma in parts) + 1.0
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if _lognormal_survival(parts, mid) > survival:
            lo = mid
        else:
            hi = mid
    return hi


@lru_cache(maxsize=4096)
def ttft_prompt_tokens(shape: WorkloadShape, percentile: float) -> float:
    """The prompt whose prefill sets TTFT at `percentile`: the p99 prompt
    (`WorkloadShape.prompt_tokens_tail`) at p99 and above, the prompt at `percentile` of
    the lengths' lognormal (mixture) below, never below the mean.

    A p90 or p95 TTFT planned with the p99 prompt's prefill was 1.3-3.6x the engine's
    (`bench/ttft_fidelity.py`: lognormal prompts of mean 500-3000 tokens, cv 0.5-2.0, at
    20-80 % busy); S2's tiers, planned at p95, got about half the replicas' capacity."""
    tail = shape.prompt_tokens_tail
    if percentile >= 99.0:
        return tail
    parts = _shape_stats(shape).prompt_parts
    if len(parts) == 1:
        _, mu, sigma = parts[0]
        at = math.exp(mu + sigma * _z(percentile))
    else:
        at = _mixture_quantile(parts, 1.0 - percentile / 100.0)
    return min(max(at, shape.prompt_tokens_mean), tail)


@dataclass(frozen=True, slots=True)
class _ShapeStats:
    """Length statistics of a shape (or mix) that the model uses, computed once."""

    decodes_by_class: tuple[float, ...]
    """Decode steps (O - 1 >= 1) of each output-length class."""
    class_weights: tuple[float, ...]
    """Share of requests (among those with >= 1 decode step) in each class."""
    prompt_parts: tuple[tuple[float, float, float], ...]
    """(weight, mu, sigma) of the prompt-length lognormals."""
    prompt_mean: float
    prompt_ex2: float
    decodes_mean: float
    """E[O - 1] per request."""
    decode_context_mean: float
    """E[(O - 1) (P + O/2)]: KV tokens read by one request's decode steps, summed."""


@dataclass(frozen=True, slots=True)
class _PartStats:
    prompt_mean: float
    prompt_ex2: float
    decodes_mean: float
    context_mean: float


@lru_cache(maxsize=4096)
def _part_stats(part: WorkloadShape) -> _PartStats:
    """Means of one (unmixed) shape, as `_shape_stats` sums them for a mix."""
    _, sigma_o = _lognormal_params(part, "output")
    _, sigma_p = _lognormal_params(part, "prompt")
    p, o = part.prompt_tokens_mean, part.output_tokens_mean
    o2 = o * o * math.exp(sigma_o * sigma_o)
    return _PartStats(
        p,
        p * p * math.exp(sigma_p * sigma_p),
        max(o - 1.0, 0.0),
        max((o - 1.0) * p + (o2 - o) / 2.0, 0.0),
    )


@lru_cache(maxsize=4096)
def _shape_stats(shape: WorkloadShape) -> _ShapeStats:
    parts = shape.components or ((1.0, shape),)
    per_part = _O_CLASSES if len(parts) == 1 else max(4, _O_CLASSES // 2)
    decodes: list[float] = []
    weights: list[float] = []
    prompt_parts: list[tuple[float, float, float]] = []
    ex2 = decodes_mean = context_mean = 0.0
    for weight, part in parts:
        mu_o, sigma_o = _lognormal_params(part, "output")
        n = 1 if sigma_o == 0.0 else per_part
        for i in range(n):
            z = _STD_NORMAL.inv_cdf((i + 0.5) / n) if n > 1 else 0.0
            d = max(round(math.exp(mu_o + sigma_o * z)), 1) - 1.0
            if d >= 1.0:
                decodes.append(d)
                weights.append(weight / n)
        mu_p, sigma_p = _lognormal_params(part, "prompt")
        prompt_parts.append((weight, mu_p, sigma_p))
        p, o = part.prompt_tokens_mean, part.output_tokens_mean
        ex2 += weight * p * p * math.exp(sigma_p * sigma_p)
        decodes_mean += weight * max(o - 1.0, 0.0)
        # E[(O-1)(P + O/2)] with independent P and lognormal O: long answers hold the
        # most KV for the longest, so the second moment of O matters.
        o2 = o * o * math.exp(sigma_o * sigma_o)
        context_mean += weight * max((o - 1.0) * p + (o2 - o) / 2.0, 0.0)
    if not decodes:
        decodes, weights = [max(shape.output_tokens_mean - 1.0, 1.0)], [1.0]
    total = sum(weights)
    return _ShapeStats(
        tuple(decodes),
        tuple(w / total for w in weights),
        tuple(prompt_parts),
        shape.prompt_tokens_mean,
        ex2,
        decodes_mean,
        context_mean,
    )


def _prompt_survival(stats: _ShapeStats, tokens: float) -> float:
    return _lognormal_survival(stats.prompt_parts, tokens)


@dataclass(frozen=True, slots=True)
class _Load:
    """Mean state of a replica at one load, from which the tails are computed."""

    rate_rps: float
    busy_frac: float
    step_s: float
    batch: float
    decode_step_s: float
    """A step at this batch without any prefill."""
    prefill_s_per_token: float
    """Cost of one prefill token in a step (its compute and its own context)."""
    prefill_budget_tokens: float
    """Token budget per step left by the decodes (sets the number of prefill chunks)."""
    max_batched_tokens: float
    """The whole budget: caps of step sizes use it so that they never shrink with load."""
    prefill_time_frac: float
    """Share of time spent in steps that carry prefill chunks (the prefill 'server')."""
    stable: bool
    decode_step_sd_frac: float = 0.0
    """Relative spread of the decode step a request sees over its life (`_batch_spread`)."""


def _batch_spread(
    decode_step_s: float, idle_step_s: float, batch: float, busy_frac: float
) -> float:
    """Relative standard deviation of the decode step over a request's life.

    The batch is not steady. A replica serves its batch like a processor shared by the
    sequences in it: each step takes longer as the batch grows, so requests stay longer
    and the batch grows further. With Poisson arrivals that makes the batch negative
    binomial, of variance B / (1 - u) at mean B and busy fraction u (sd sqrt(B) at light
    load, far more near saturation), and the decode step moves with it by phi, the share
    of the step that grows with the batch. A request decodes through those swings: on the
    step engine they are slow (per-request TPOT correlates 0.91 with that of the request
    20 arrivals later) and they set the TPOT tail of long answers, which prefills landing in the
    steps do not (1,000 / 650-token requests at 85 % busy: TPOT p50 24.8 ms, p99 29.9 ms,
    the prefills alone 27.3 ms)."""
    if batch <= 1.0 or not 0.0 < idle_step_s < decode_step_s:
        return 0.0
    phi = (decode_step_s - idle_step_s) / decode_step_s
    return phi / math.sqrt(batch * max(1.0 - busy_frac, 0.05))


def _load(model: LatencyModel, rate_rps: float, u: float, shape: WorkloadShape) -> _Load:
    s = mean_step_s(model, rate_rps, shape)
    stats = _shape_stats(shape)
    p = stats.prompt_mean
    batch = rate_rps * stats.decodes_mean * s
    budget = model.max_num_batched_tokens - batch
    k = model.context_s_per_token
    context_per_seq = stats.decode_context_mean / stats.decodes_mean if batch > 0 else 0.0
    s_decode = model.step_s(0.0, batch, batch * context_per_seq)
    # A prefill token costs the busier line's per-token price, its own KV and, on average,
    # attention to half of a length-biased prompt.
    biased_prompt = stats.prompt_ex2 / stats.prompt_mean
    c1 = (
        max(model.prefill_s_per_token, model.compute_s_per_token)
        + k
        + model.attention_s_per_token_pair * 0.5 * biased_prompt
    )
    if budget > 0.0 and math.isfinite(s):
        # Each prompt needs p / budget steps' worth of budget plus its own compute.
        prefill_time_frac = rate_rps * (p / budget * s_decode + c1 * p)
    else:
        prefill_time_frac = math.inf
    stable = (
        math.isfinite(s)
        and u < 1.0
        and batch <= batch_limit(model, shape)
        and prefill_time_frac <= model.tail.batch_limit_frac
    )
    return _Load(
        rate_rps,
        u,
        s,
        batch,
        s_decode,
        c1,
        max(budget, 1.0),
        float(model.max_num_batched_tokens),
        prefill_time_frac,
        stable,
        model.tail.batch_spread * _batch_spread(s_decode, model.step_s(0.0, 0.0, 0.0), batch, u),
    )


def _tpot_exceed_prob(
    load: _Load,
    stats: _ShapeStats,
    tpot_s: float,
    spread: float,
    stop_above: float = math.inf,
) -> float:
    """P(per-request TPOT > tpot_s): output-length classes x prefills landing in each.

    A request with d decode steps sees N ~ Poisson(rate * window) other requests'
    prefills (window = its own prefill step + d - 1 mean steps; arrivals queue while a
    long step runs, so the own step is length-biased); its TPOT is decode_step +
    cost(prompts of those N) / d. The tail of that sum is the larger of one big prompt
    (heavy tails) and a normal body (many prompts). Past `stop_above`, any share above
    it (`_exceed_prob`)."""
    return _exceed_prob(_tpot_classes(load, stats, spread), load, stats, tpot_s, stop_above)


_TpotClass = tuple[float, float, float, float, float]
"""(decode steps d, weight, Poisson mean m of the prefills landing in them, m times the
mean prompt, the body's normal scale): what `_tpot_exceed_prob` computes per output
length class that does not depend on the TPOT asked about."""


def _tpot_classes(load: _Load, stats: _ShapeStats, spread: float) -> tuple[_TpotClass, ...]:
    """The output-length classes of `_tpot_exceed_prob`, computed once for a load: the
    quantile search (`_tpot_quantile`) asks 19 TPOTs of one load."""
    c1 = load.prefill_s_per_token
    own_step = load.decode_step_s + c1 * min(
        stats.prompt_ex2 / stats.prompt_mean, load.max_batched_tokens
    )
    rate = load.rate_rps * (1.0 + (spread - 1.0) * load.busy_frac)
    step = load.step_s
    prompt_mean, prompt_ex2 = stats.prompt_mean, stats.prompt_ex2
    sqrt = math.sqrt
    classes: list[_TpotClass] = []
    for d, weight in zip(stats.decodes_by_class, stats.class_weights, strict=True):
        # Arrivals during this request's own prefill step and its first d - 1 decode steps
        # are prefilled inside its decode steps.
        m = rate * ((d - 1.0) * step + own_step)
        if m <= 0.0:
            continue
        # The batch's swings, in prefill tokens' worth of this request's decode time.
        swing_tokens = load.decode_step_s * load.decode_step_sd_frac * d / c1
        scale = sqrt(2.0 * (m * prompt_ex2 + swing_tokens**2))
        classes.append((d, weight, m, m * prompt_mean, scale))
    return tuple(classes)


def _exceed_prob(
    classes: tuple[_TpotClass, ...],
    load: _Load,
    stats: _ShapeStats,
    tpot_s: float,
    stop_above: float = math.inf,
) -> float:
    """`_tpot_exceed_prob` over classes from `_tpot_classes`; the sum so far once it
    exceeds `stop_above` (every class adds a share >= 0, so the whole sum exceeds it too:
    a caller that only compares with it gets the same answer)."""
    excess = tpot_s - load.decode_step_s
    if excess < 0.0:
        return 1.0
    c1 = load.prefill_s_per_token
    budget = load.max_batched_tokens
    parts = stats.prompt_parts
    erfc, expm1 = math.erfc, math.expm1
    single = len(parts) == 1 and parts[0][2] > 0.0
    mu, scale = parts[0][1], parts[0][2] * math.sqrt(2.0)
    total = 0.0
    for d, weight, m, m_prompts, body_scale in classes:
        y_tokens = excess * d / c1
        if y_tokens >= d * budget:
            continue  # more prefill than the token budget lets into d steps
        if single:
            survival = 0.5 * erfc((math.log(y_tokens) - mu) / scale) if y_tokens > 0 else 1.0
        else:
            survival = _lognormal_survival(parts, y_tokens)
        jump = -expm1(-m * survival)
        body = 0.5 * erfc((y_tokens - m_prompts) / body_scale)
        total += weight * (jump if jump > body else body)
        if total > stop_above:
            return total
    return total


def _tpot_quantile(load: _Load, stats: _ShapeStats, percentile: float, spread: float) -> float:
    target = 1.0 - percentile / 100.0
    lo = load.decode_step_s
    hi = lo + load.prefill_s_per_token * load.max_batched_tokens
    classes = _tpot_classes(load, stats, spread)
    if _exceed_prob(classes, load, stats, lo, target) <= target:
        return lo
    for _ in range(18):  # geometric bisection: ~1e-4 relative precision
        mid = math.sqrt(lo * hi)
        if _exceed_prob(classes, load, stats, mid, target) > target:
            lo = mid
        else:
            hi = mid
    return hi


TPOT_MEAN_POINTS = 40
"""Points of the geometric grid `tpot_mean_s` integrates the TPOT survival over."""


def tpot_mean_s(model: LatencyModel, rate_rps: float, shape: WorkloadShape) -> float:
    """Mean per-request TPOT at a Poisson rate, without the model's correction: what the
    sum over the count of vLLM's per-request TPOT histogram reads for a pool at this load.

    The integral of `_tpot_exceed_prob` (the survival the percentiles come from) above the
    decode step, on a geometric grid of the excess up to a full token budget of prefill
    per step, plus the per-output-token cost. A mean over a window is far steadier than a
    percentile read from vLLM's buckets (docs/planner.md, "Online calibration")."""
    if rate_rps < 0.0 or not math.isfinite(rate_rps):
        raise ValueError(f"rate_rps must be finite and >= 0, got {rate_rps}")
    u = rate_rps * work_s_of_shape(model, shape)
    load = _load(model, rate_rps, u, shape)
    if not load.stable:
        return UNSTABLE_S
    stats = _shape_stats(shape)
    classes = _tpot_classes(load, stats, model.tail.tpot_interference)
    width = load.prefill_s_per_token * load.max_batched_tokens
    # From 1e-4 of the widest excess to all of it, geometrically: the survival falls
    # fastest near the decode step.
    grid = [0.0] + [
        width * math.pow(10.0, 4.0 * k / (TPOT_MEAN_POINTS - 1) - 4.0)
        for k in range(TPOT_MEAN_POINTS)
    ]
    survival = [min(_exceed_prob(classes, load, stats, load.decode_step_s + x), 1.0) for x in grid]
    area = sum(
        (grid[k + 1] - grid[k]) * (survival[k] + survival[k + 1]) / 2.0
        for k in range(len(grid) - 1)
    )
    return load.decode_step_s + area + model.output_s_per_token


def _ttft(model: LatencyModel, load: _Load, shape: WorkloadShape, percentile: float) -> float:
    """Own prefill of the percentile's prompt (`ttft_prompt_tokens`, in chunks) + waiting
    for the running step and the prefills ahead, which grows like u / (1 - u)."""
    tail = model.tail
    c1 = load.prefill_s_per_token

    def prefill_s(tokens: float) -> float:
        chunks = max(1.0, math.ceil(tokens / load.prefill_budget_tokens))
        pairs = model.attention_s_per_token_pair * 0.5 * tokens * tokens
        return chunks * load.decode_step_s + c1 * tokens + pairs

    p_own = ttft_prompt_tokens(shape, percentile)
    own = prefill_s(p_own)
    # The queue's unit stays the p99 prompt's prefill whatever the percentile (the
    # queue-step parameters were fitted with it; the prefills ahead are not this
    # request's own).
    p_tail = shape.prompt_tokens_tail
    queue_unit = own if p_own == p_tail else prefill_s(p_tail)
    # The step running when a request arrives is length-biased, not a p99 prefill.
    stats = _shape_stats(shape)
    biased_prompt = stats.prompt_ex2 / stats.prompt_mean
    long_step = load.decode_step_s + c1 * min(biased_prompt, load.max_batched_tokens)
    # Queue pressure is the time share of prefill-carrying steps, not the busy fraction:
    # a new request waits for the running step and for prefills ahead of it, while decode
    # work only lengthens steps (already in long_step and own).
    rho = min(load.prefill_time_frac, 0.999)
    scale = math.log(1.0 / (1.0 - percentile / 100.0)) / math.log(100.0)
    residual = tail.ttft_residual_steps * long_step
    queue = tail.ttft_queue_steps * queue_unit * rho / (1.0 - rho)
    # The running step's residual is bounded by one step, so below p99 it shrinks less
    # than the queue, whose tail is unbounded (`TailParams.ttft_residual_bounded`).
    kept = tail.ttft_residual_bounded * max(0.0, 1.0 - scale) * residual
    wait = scale * (residual + queue) + kept
    return model.correction.ttft(own + wait + model.first_token_extra_s(p_own))


def predict_at_busy(
    model: LatencyModel, busy_frac: float, shape: WorkloadShape, percentile: float = 99.0
) -> LatencyPrediction:
    """Prediction at a busy fraction u (rate = u / work): the planner's view of a mix."""
    w = work_s_of_shape(model, shape)
    return _predict(model, busy_frac / w, busy_frac, shape, percentile)


def predict(
    model: LatencyModel, rate_rps: float, shape: WorkloadShape, percentile: float = 99.0
) -> LatencyPrediction:
    """Percentile TTFT (queueing included) and per-request TPOT at a Poisson rate."""
    if rate_rps < 0.0 or not math.isfinite(rate_rps):
        raise ValueError(f"rate_rps must be finite and >= 0, got {rate_rps}")
    u = rate_rps * work_s_of_shape(model, shape)
    return _predict(model, rate_rps, u, shape, percentile)


def meets_slo(model: LatencyModel, busy_frac: float, slo: SloTarget, shape: WorkloadShape) -> bool:
    """Does one replica at busy fraction u meet `slo`? (Cheaper than predict: no quantile
    search, the TPOT tail is judged by its exceedance probability at the target.)"""
    _z(slo.percentile)
    if busy_frac > model.tail.busy_limit_frac:
        return False  # no headroom left for the model's errors
    w = work_s_of_shape(model, shape)
    load = _load(model, busy_frac / w, busy_frac, shape)
    if not load.stable:
        return False
    if slo.miss_frac is None and _ttft(model, load, shape, slo.percentile) > slo.ttft_s:
        return False  # TTFT first where its percentile is known: the cheaper check
    ttft_percentile, tpot_ok = _miss_split(model, load, shape, slo)
    if not tpot_ok:
        return False
    return slo.miss_frac is None or _ttft(model, load, shape, ttft_percentile) <= slo.ttft_s


def _tpot_exceed(
    model: LatencyModel,
    load: _Load,
    shape: WorkloadShape,
    slo: SloTarget,
    stop_above: float = math.inf,
) -> float:
    """The share of requests whose TPOT exceeds the SLO (corrections applied); past
    `stop_above`, any share above it (`_exceed_prob`)."""
    corr = model.correction
    corrected = (slo.tpot_s - corr.tpot_add_s) / corr.tpot_mult - model.output_s_per_token
    spread = model.tail.tpot_interference
    return _tpot_exceed_prob(load, _shape_stats(shape), corrected, spread, stop_above)


MAX_TTFT_PERCENTILE = 99.9
"""The highest percentile TTFT is checked at when the miss budget is split by need."""


def _miss_split(
    model: LatencyModel, load: _Load, shape: WorkloadShape, slo: SloTarget
) -> tuple[float, bool]:
    """(the percentile TTFT must meet its SLO at, does TPOT keep within its share).

    Without `SloTarget.miss_frac` both latencies hold `percentile`. With it, a request
    attains the target only if both latencies hold, so the misses it allows are shared
    (a union bound): TPOT takes what the model predicts it misses at this load, kept
    within `tpot_share_frac` of the budget (its least share is reserved whatever the
    prediction; past its most it misses the SLO); TTFT gets the rest.

    The planner does not split by need (it plans each latency at
    `capacities.planning_percentile`, the equal split): measured with
    `bench/attainment_fidelity.py --ttft-bound --split 0 0.5`, the engine's share of
    requests meeting both fell below the target in 28 of 72 TTFT-bound cases, against 1
    of 72 with the equal split: below p99 the TTFT model is optimistic where TTFT binds
    (docs/predictor.md, "TTFT where it binds").
    """
    if slo.miss_frac is None:
        allowed = 1.0 - slo.percentile / 100.0
        return slo.percentile, _tpot_exceed(model, load, shape, slo, allowed) <= allowed
    budget = min(max(slo.miss_frac, 0.0), 1.0)
    least_frac, most_frac = slo.tpot_share_frac
    least = min(max(least_frac, 0.0), 1.0) * budget
    most = max(min(max(most_frac, 0.0), 1.0) * budget, least)
    tpot_miss = _tpot_exceed(model, load, shape, slo)
    ttft_miss = budget - min(max(tpot_miss, least), most)
    ttft_percentile = min(100.0 * (1.0 - ttft_miss), MAX_TTFT_PERCENTILE)
    return ttft_percentile, tpot_miss <= most and ttft_miss > 0.0


Limit = Literal["busy", "batch", "prefill", "ttft", "tpot"]
"""A check of `meets_slo`: the replica is busier than `TailParams.busy_limit_frac`
(`busy`), its decoding batch exceeds what max_num_seqs or the KV cache holds (`batch`),
prefill-carrying steps take too much of the time (`prefill`), or a latency misses the SLO
at its percentile."""


def failing_limits(
    model: LatencyModel, busy_frac: float, slo: SloTarget, shape: WorkloadShape
) -> tuple[Limit, ...]:
    """Which checks of `meets_slo` fail at busy fraction u, in that order (empty: it meets
    the SLO). Just past a replica's capacity this names what bounds it, and so which
    engine argument could move the bound (`max_num_batched_tokens` for TPOT, whose tail
    is prefill chunks landing in decode steps; `max_num_seqs` for the batch)."""
    _z(slo.percentile)
    w = work_s_of_shape(model, shape)
    load = _load(model, busy_frac / w, busy_frac, shape)
    failing: list[Limit] = []
    if not math.isfinite(load.step_s) or busy_frac > model.tail.busy_limit_frac:
        failing.append("busy")
    if load.batch > batch_limit(model, shape):
        failing.append("batch")
    if load.prefill_time_frac > model.tail.batch_limit_frac:
        failing.append("prefill")
    if failing:
        return tuple(failing)  # latencies are infinite past stability: nothing more to say
    ttft_percentile, tpot_ok = _miss_split(model, load, shape, slo)
    if _ttft(model, load, shape, ttft_percentile) > slo.ttft_s:
        failing.append("ttft")
    if not tpot_ok:
        failing.append("tpot")
    return tuple(failing)


def _predict(
    model: LatencyModel, rate_rps: float, u: float, shape: WorkloadShape, percentile: float
) -> LatencyPrediction:
    _z(percentile)
    load = _load(model, rate_rps, u, shape)
    mean_batch = load.batch + rate_rps * load.step_s
    if not load.stable:
        return LatencyPrediction(UNSTABLE_S, UNSTABLE_S, mean_batch, u, False)
    ttft = _ttft(model, load, shape, percentile)
    spread = model.tail.tpot_interference
    tpot = _tpot_quantile(load, _shape_stats(shape), percentile, spread)
    tpot = model.correction.tpot(tpot + model.output_s_per_token)
    return LatencyPrediction(ttft, tpot, mean_batch, u, True)


def predict_at_concurrency(
    model: LatencyModel, concurrency: int, prompt_tokens: float, output_tokens: float
) -> LatencyPrediction:
    """Mean TTFT and TPOT under closed-loop load (`vllm bench serve --max-concurrency N`).

    Each of the N clients sends its next request when the previous one ends, so per step
    about f = N/O requests prefill and N*(O-1)/O decode: TPOT ~ c0 + a*N*P/O + b*N +
    k*N*(P+O/2) (a request's own prefill is not in its TPOT, so it sees the other N-1
    clients' prefills). When those prefills need more than the token budget left by the
    decodes, the budget sets the pace (f = budget / P) and the rest of a client's cycle is
    queueing, which shows up in TTFT; so do clients beyond max_num_seqs. Costs outside the
    engine (request overhead, per-token delivery) add to TTFT and TPOT and keep each
    client out of the engine for part of its cycle, which lightens the batch.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return predict_closed_loop(model, float(concurrency), prompt_tokens, output_tokens)


def predict_closed_loop(
    model: LatencyModel, concurrency: float, prompt_tokens: float, output_tokens: float
) -> LatencyPrediction:
    """`predict_at_concurrency` for a mean number of clients (may be fractional, e.g. a
    Poisson rate turned into requests in the system by Little's law)."""
    if not concurrency > 0:
        raise ValueError(f"concurrency must be > 0, got {concurrency}")
    p, o = float(prompt_tokens), float(output_tokens)
    if p < 1 or o < 1:
        raise ValueError("prompt_tokens and output_tokens must be >= 1")
    clients = min(concurrency, float(model.max_num_seqs))
    outside_s = (
        model.first_token_extra_s(p) + max(o - 1.0, 0.0) * model.output_s_per_token
    )  # per cycle, outside the engine's steps
    active = clients
    state = _closed_loop_state(model, active, p, o)
    for _ in range(8 if outside_s > 0.0 else 0):
        cycle_s = state[3]
        active = max(clients * cycle_s / (cycle_s + outside_s), min(clients, 1.0))
        state = _closed_loop_state(model, active, p, o)
    step, tpot, ttft, _, starts = state
    if concurrency > clients:
        # Extra clients wait for a slot: `starts` requests end per step.
        ttft += (concurrency - clients) / starts * step
    busy = starts / step * work_s(model, p, o)
    corr = model.correction
    return LatencyPrediction(
        corr.ttft(ttft + model.first_token_extra_s(p)),
        corr.tpot(tpot + model.output_s_per_token) if o > 1 else 0.0,
        active,
        min(busy, 1.0),
        True,
    )


def _closed_loop_state(
    model: LatencyModel, active: float, p: float, o: float
) -> tuple[float, float, float, float, float]:
    """(step, engine TPOT, engine TTFT, engine time per request, starts per step) with
    `active` requests in the engine on average."""
    budget = float(model.max_num_batched_tokens)
    starts = active / o  # requests starting (prefilling) per step (one at least per cycle)
    if starts * p > budget - starts * (o - 1.0):
        starts = budget / (p + o - 1.0)  # prefill-bound: full token budget every step
    decoding = starts * (o - 1.0)
    pairs_per_prompt = p * (p + 1.0) / 2.0

    def step_s(prefilling: float, decodes: float) -> float:
        context = decodes * (p + o / 2.0) + prefilling * p
        return model.step_s(p * prefilling, decodes, context, pairs_per_prompt * prefilling)

    step = step_s(starts, decoding)
    # TPOT: this request decodes while the other clients prefill and decode.
    others = max(active - 1.0, 0.0) / active
    tpot = step_s(starts * others, 1.0 + decoding * others) if o > 1 else 0.0
    # TTFT: a client's cycle is active / starts steps, o - 1 of them decoding.
    cycle_steps = active / starts
    ttft = max(cycle_steps - (o - 1.0), 1.0) * step
    ttft = max(ttft, step_s(max(starts, 1.0), decoding))  # at least its own prefill step
    return step, tpot, ttft, ttft + (o - 1.0) * tpot, starts
