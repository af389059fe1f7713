"""Engine arguments that would let a pool serve more within its SLO than replicas can.

A replica's capacity is bounded by one of the latency model's checks. Two of them are
set by the pool's vLLM arguments, not by its replica count: a tight TPOT over long
prompts is missed because prefill chunks of up to `--max-num-batched-tokens` tokens land
in the decode steps (smaller chunks make those steps shorter and the prompts' prefill
longer), and a loose tier's batch stops at `--max-num-seqs` while the KV cache has room.
When the predictor says a tried value serves at least `MIN_GAIN` times as much per
replica, the plan says so; it never changes the Deployment's arguments (they are the
user's), and nothing else in the plan depends on the advice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from tierscale_predictor import capacity, latency

CHUNK_TOKENS = (4096, 2048, 1024, 512)
"""`--max-num-batched-tokens` values tried below the pool's own (vLLM's defaults are 8192
on >= 70 GiB GPUs, 2048 below). vLLM requires it >= `--max-num-seqs`, which is lowered
with it where needed."""
SEQS_FACTORS = (2, 4)
"""`--max-num-seqs` multiples tried when the decoding batch bounds the replica and the KV
cache would hold more sequences."""
MIN_GAIN = 1.25
"""Advice is given only for at least this much more capacity per replica."""
BATCHED_TOKENS_FLAG, NUM_SEQS_FLAG = "--max-num-batched-tokens", "--max-num-seqs"
_Args = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class EngineAdvice:
    """Engine arguments for one pool and what the predictor says they would serve."""

    args: _Args
    """(flag, value) pairs to set on the pool's vLLM container."""
    capacity_rps: float
    """Requests/s one replica serves within the SLO with them."""
    now_capacity_rps: float
    """The same with the pool's arguments today."""
    now_args: _Args
    """The pool's values today of the same flags."""
    bound_by: str
    """What bounds a replica today: "TPOT" or "the decoding batch"."""

    def text(self) -> str:
        """One clause for the decision's message, with the numbers (no semicolon)."""
        new = " ".join(f"{flag} {value}" for flag, value in self.args)
        old = " ".join(f"{flag} {value}" for flag, value in self.now_args)
        return (
            f"with {new} one replica would serve {self.capacity_rps:.2f} req/s within the SLO,"
            f" against {self.now_capacity_rps:.2f} with {old} ({self.bound_by} binds)"
        )


def engine_advice(
    model: latency.LatencyModel,
    slo: latency.SloTarget,
    shape: latency.WorkloadShape,
    bias: float = 1.0,
) -> EngineAdvice | None:
    """The tried engine arguments that serve the most within `slo` for `shape`, if they
    beat the pool's own by `MIN_GAIN` (or serve something where it serves nothing).
    Capacities are divided by the pool's learned breach `bias`, as the plan's are."""
    advice = _unbiased_advice(model, slo, shape)
    if advice is None or bias == 1.0:
        return advice
    return replace(
        advice,
        capacity_rps=advice.capacity_rps / bias,
        now_capacity_rps=advice.now_capacity_rps / bias,
    )


@lru_cache(maxsize=4096)
def _unbiased_advice(
    model: latency.LatencyModel, slo: latency.SloTarget, shape: latency.WorkloadShape
) -> EngineAdvice | None:
    """`engine_advice` without a bias: cached, since a pool's lengths repeat between
    decisions (rounded to two significant digits) and every plan asks for every pool."""
    now_rps = capacity.max_rate_rps(model, slo, shape)
    u = capacity.max_busy_frac(model, slo, shape)
    limits = latency.failing_limits(model, min(u + 1e-4, 1.0), slo, shape)
    tries = [
        *(_smaller_chunks(model) if "tpot" in limits else ()),
        *(_more_sequences(model, shape) if "batch" in limits else ()),
    ]
    best: EngineAdvice | None = None
    for args, now, bound_by, trial in tries:
        bar_rps = MIN_GAIN * now_rps if best is None else max(MIN_GAIN * now_rps, best.capacity_rps)
        if not _may_serve_more(trial, slo, shape, bar_rps):
            continue
        rps = capacity.max_rate_rps(trial, slo, shape)
        if rps > MIN_GAIN * now_rps and (best is None or rps > best.capacity_rps):
            best = EngineAdvice(args, rps, now_rps, now, bound_by)
    return best


BAR_MARGIN = 1e-9
"""Relative margin below the bar at which `_may_serve_more` probes (float rounding)."""


def _may_serve_more(
    trial: latency.LatencyModel,
    slo: latency.SloTarget,
    shape: latency.WorkloadShape,
    bar_rps: float,
) -> bool:
    """False where `capacity.max_rate_rps(trial, ...)` is sure to be at most `bar_rps`:
    one `meets_slo` probe just below the bar's busy fraction, instead of the 19 of the
    capacity's bisection.

    The bisection assumes what this does (a replica that misses the SLO at some busy
    fraction misses it at every higher one): a miss just below the bar's busy fraction
    leaves the bisection's answer below it. Most tried arguments serve less than the bar
    (`MIN_GAIN` over the pool's own), so most bisections are skipped."""
    busy_frac = bar_rps * capacity.work_s_per_request(trial, shape) * (1.0 - BAR_MARGIN)
    if busy_frac >= 1.0:
        return False  # the capacity's busy fraction stays below 1
    return busy_frac <= 0.0 or latency.meets_slo(trial, busy_frac, slo, shape)


_Try = tuple[_Args, _Args, str, latency.LatencyModel]
"""(arguments tried, the pool's values of those flags, what bounds it, the model with them)."""


def _smaller_chunks(model: latency.LatencyModel) -> list[_Try]:
    """Smaller prefill chunks, with max_num_seqs lowered to them where vLLM requires it."""
    tries: list[_Try] = []
    for tokens in CHUNK_TOKENS:
        if tokens >= model.max_num_batched_tokens:
            continue
        seqs = min(model.max_num_seqs, tokens)
        args: _Args = ((BATCHED_TOKENS_FLAG, tokens),)
        now: _Args = ((BATCHED_TOKENS_FLAG, model.max_num_batched_tokens),)
        if seqs < model.max_num_seqs:
            args += ((NUM_SEQS_FLAG, seqs),)
            now += ((NUM_SEQS_FLAG, model.max_num_seqs),)
        trial = replace(model, max_num_batched_tokens=tokens, max_num_seqs=seqs)
        tries.append((args, now, "TPOT", trial))
    return tries


def _more_sequences(model: latency.LatencyModel, shape: latency.WorkloadShape) -> list[_Try]:
    """More sequences per batch, while the KV cache would hold them."""
    tries: list[_Try] = []
    for factor in SEQS_FACTORS:
        seqs = model.max_num_seqs * factor
        if seqs > model.max_num_batched_tokens:
            break  # vLLM refuses more sequences than batched tokens
        trial = replace(model, max_num_seqs=seqs)
        if latency.batch_limit(trial, shape) <= latency.batch_limit(model, shape):
            break  # the KV cache, not max_num_seqs, holds the batch
        now: _Args = ((NUM_SEQS_FLAG, model.max_num_seqs),)
        tries.append((((NUM_SEQS_FLAG, seqs),), now, "the decoding batch", trial))
    return tries
