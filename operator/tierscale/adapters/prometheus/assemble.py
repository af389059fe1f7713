"""Parsed query answers -> `MetricInputs`, with the rules for what is missing or stale.

Pure, shared by the real adapter and its fake, so both withhold the same numbers:

- a query that failed, or a group it did not return, or a NaN value: that field is None;
- no heartbeat for a tier or pool (its heartbeat query failed or found no series): the
  tier or pool is absent from `MetricInputs` (nothing about it can be dated);
- a heartbeat older than `stale_after_s` at `now_s`: the tier or pool is present with
  its `sampled_at_s` and every measured field None (`rate_history_rps` stays: it is
  history either way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tierscale.adapters.prometheus import queries
from tierscale.adapters.prometheus.parse import Key
from tierscale.domain.metrics import Histogram, MetricInputs, PoolSignals, TierTraffic

History = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Answers:
    """What the queries of one read returned; a failed query is absent from its mapping."""

    values: Mapping[str, Mapping[Key, float | None]] = field(default_factory=dict)
    """input name -> group -> value (None: NaN or infinite)."""
    histograms: Mapping[str, Mapping[Key, Histogram | None]] = field(default_factory=dict)
    history: Mapping[Key, History] | None = None
    """route -> rate history; None if the range query failed or was not made."""


def is_stale(sampled_at_s: float, now_s: float, stale_after_s: float) -> bool:
    """The one staleness rule: a sample more than `stale_after_s` older than `now_s`."""
    return now_s - sampled_at_s > stale_after_s


def _value(answers: Answers, name: str, key: Key) -> float | None:
    by_key = answers.values.get(name)
    return None if by_key is None else by_key.get(key)


def _histogram(answers: Answers, name: str, key: Key) -> Histogram | None:
    by_key = answers.histograms.get(name)
    return None if by_key is None else by_key.get(key)


def _with_sum(histogram: Histogram | None, sum_value: float | None) -> Histogram | None:
    if histogram is None or sum_value is None:
        return histogram
    return replace(histogram, sum_value=sum_value)


def traffic(
    routes_by_tier: Mapping[str, str],
    answers: Answers,
    *,
    now_s: float,
    window_s: float,
    stale_after_s: float,
) -> dict[str, TierTraffic]:
    """tier key -> Envoy's view of it, for every tier whose route counter can be dated."""
    out: dict[str, TierTraffic] = {}
    for tier_key, route in routes_by_tier.items():
        key = (route,)
        sampled_at = _value(answers, queries.TIER_SAMPLED_AT.name, key)
        if sampled_at is None:
            continue
        history = () if answers.history is None else answers.history.get(key, ())
        stale = is_stale(sampled_at, now_s, stale_after_s)
        out[tier_key] = TierTraffic(
            sampled_at_s=sampled_at,
            window_s=window_s,
            rate_rps=None if stale else _value(answers, queries.TIER_RATE.name, key),
            rate_history_rps=history,
        )
    return out


def signals(
    pools: Sequence[tuple[str, str]],
    answers: Answers,
    *,
    now_s: float,
    window_s: float,
    stale_after_s: float,
) -> dict[str, PoolSignals]:
    """pool key -> vLLM's view of it, for every pool whose pods' gauges can be dated."""
    out: dict[str, PoolSignals] = {}
    for key in pools:
        sampled_at = _value(answers, queries.POOL_SAMPLED_AT.name, key)
        if sampled_at is None:
            continue
        pool_key = f"{key[0]}/{key[1]}"
        if is_stale(sampled_at, now_s, stale_after_s):
            out[pool_key] = PoolSignals(sampled_at_s=sampled_at, window_s=window_s)
            continue
        out[pool_key] = PoolSignals(
            sampled_at_s=sampled_at,
            window_s=window_s,
            ttft=_histogram(answers, queries.POOL_TTFT.name, key),
            tpot=_with_sum(
                _histogram(answers, queries.POOL_TPOT.name, key),
                _value(answers, queries.POOL_TPOT_SUM.name, key),
            ),
            prompt_tokens=_with_sum(
                _histogram(answers, queries.POOL_PROMPT_TOKENS.name, key),
                _value(answers, queries.POOL_PROMPT_TOKENS_SUM.name, key),
            ),
            output_tokens=_with_sum(
                _histogram(answers, queries.POOL_OUTPUT_TOKENS.name, key),
                _value(answers, queries.POOL_OUTPUT_TOKENS_SUM.name, key),
            ),
            finished_rate_rps=_value(answers, queries.POOL_FINISHED_RATE.name, key),
            running_requests=_value(answers, queries.POOL_RUNNING.name, key),
            waiting_requests=_value(answers, queries.POOL_WAITING.name, key),
            kv_usage_frac=_value(answers, queries.POOL_KV_USAGE.name, key),
        )
    return out


def withhold_stale(inputs: MetricInputs, now_s: float, stale_after_s: float) -> MetricInputs:
    """`inputs` with the staleness rule applied (for sources that did not apply it)."""
    traffic_by_tier = {
        key: replace(t, rate_rps=None) if is_stale(t.sampled_at_s, now_s, stale_after_s) else t
        for key, t in inputs.traffic_by_tier.items()
    }
    signals_by_pool = {
        key: PoolSignals(sampled_at_s=s.sampled_at_s, window_s=s.window_s)
        if is_stale(s.sampled_at_s, now_s, stale_after_s)
        else s
        for key, s in inputs.signals_by_pool.items()
    }
    return replace(inputs, traffic_by_tier=traffic_by_tier, signals_by_pool=signals_by_pool)
