"""Metric inputs -> the planner's Observations: one pure function both shells go through.

What each field of a `TierObservation` is, in a cluster and in the simulator alike:

- `rate_rps`, `rate_history_rps`: the tier's Envoy route counter (`TierTraffic`);
- `ttft_s`, `tpot_s`: `histogram_quantile(percentile/100, ...)` of the tier's own pool's
  vLLM histograms; `tpot_mean_s`: the TPOT histogram's sum / count;
- `attainment_frac`: share of the pool's requests under the tier's TTFT bound and under its
  TPOT bound, each read from its histogram, combined conservatively
  (`combined_attainment`); `window_requests`: the requests behind it;
  `attainment_most_frac`: the same with TPOT's bucket at its bound counted as within
  (`combined_attainment_most`); `ttft_bucket_s`, `tpot_bucket_s`: the bucket each
  percentile lies in (what the buckets can and cannot tell, `breach.unproven`);
- token means and p99s: `vllm:request_prompt_tokens` / `_generation_tokens` of the pool
  (sum/count; histogram quantile, its top bucket closed at the Deployment's
  `--max-model-len` when set: no request is longer, and vLLM's 1-2-5 buckets are too
  wide to say where below it a tail cut by that limit ends);
- `running_requests`, `waiting_requests`, `kv_usage_frac`, `pool_rate_rps`: the pool's vLLM
  gauges and success counter;
- `current_replicas`, `ready_replicas`: the Deployment, from Kubernetes.

vLLM labels nothing by tier, so latency and lengths are the pool's: they include looser
tiers' requests spilled onto it (served at the pool's SLO, so the pool's own percentile
is what its SLO is about). The observation's time is the oldest of its sources'
(a tier is only as fresh as the stalest number it is planned on).
"""

from __future__ import annotations

from collections.abc import Sequence

from tierscale.domain.metrics import (
    Histogram,
    MetricInputs,
    PoolReplicas,
    PoolSignals,
    TierTraffic,
)
from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.tiers import Tier

TAIL_QUANTILE = 0.99
"""Request lengths are planned at their mean and at this quantile (the heavy tail)."""


def pool_key(tier: Tier) -> str:
    """`namespace/deployment`: how both shells name a tier's pool."""
    return f"{tier.namespace}/{tier.pool.deployment}"


def observations(tiers: Sequence[Tier], inputs: MetricInputs) -> Observations:
    """The planner's view of every tier in `tiers` from what was measured; see module doc.

    A tier without an Envoy sample gets no observation (the planner holds it).
    """
    by_tier: dict[str, TierObservation] = {}
    for tier in tiers:
        traffic = inputs.traffic_by_tier.get(tier.key)
        if traffic is None:
            continue
        key = pool_key(tier)
        signals = inputs.signals_by_pool.get(key)
        replicas = inputs.replicas_by_pool.get(key, PoolReplicas(current=None, ready=None))
        by_tier[tier.key] = _observe_tier(tier, traffic, signals, replicas)
    return Observations(by_tier=by_tier)


def _observe_tier(
    tier: Tier, traffic: TierTraffic, signals: PoolSignals | None, replicas: PoolReplicas
) -> TierObservation:
    q = tier.slo.percentile / 100.0
    if signals is None:
        return TierObservation(
            tier_key=tier.key,
            sampled_at_s=traffic.sampled_at_s,
            rate_rps=traffic.rate_rps,
            window_s=traffic.window_s,
            rate_history_rps=traffic.rate_history_rps,
            current_replicas=replicas.current,
            ready_replicas=replicas.ready,
            newest_ready_at_s=replicas.newest_ready_at_s,
        )
    attainment, behind = combined_attainment(signals.ttft, signals.tpot, tier)
    most = combined_attainment_most(signals.ttft, signals.tpot, tier)
    return TierObservation(
        tier_key=tier.key,
        sampled_at_s=min(traffic.sampled_at_s, signals.sampled_at_s),
        rate_rps=traffic.rate_rps,
        window_s=max(traffic.window_s, signals.window_s),
        prompt_tokens_mean=_mean(signals.prompt_tokens),
        output_tokens_mean=_mean(signals.output_tokens),
        prompt_tokens_p99=_tokens_quantile(signals.prompt_tokens, tier),
        output_tokens_p99=_tokens_quantile(signals.output_tokens, tier),
        ready_replicas=replicas.ready,
        current_replicas=replicas.current,
        newest_ready_at_s=replicas.newest_ready_at_s,
        running_requests=signals.running_requests,
        waiting_requests=signals.waiting_requests,
        kv_usage_frac=signals.kv_usage_frac,
        ttft_s=_quantile(signals.ttft, q),
        tpot_s=_quantile(signals.tpot, q),
        tpot_mean_s=_mean(signals.tpot),
        pool_rate_rps=signals.finished_rate_rps,
        attainment_frac=attainment,
        window_requests=behind,
        attainment_most_frac=most,
        ttft_bucket_s=_bucket(signals.ttft, q),
        tpot_bucket_s=_bucket(signals.tpot, q),
        rate_history_rps=traffic.rate_history_rps,
    )


def combined_attainment(
    ttft: Histogram | None, tpot: Histogram | None, tier: Tier
) -> tuple[float | None, float | None]:
    """(estimated share of requests meeting both bounds, requests behind it).

    vLLM exports TTFT and TPOT as separate histograms, so which request missed which is
    lost. The estimate is the lower (Fréchet) bound `a_ttft + a_tpot - 1`: exact when the
    two kinds of miss never fall on the same request, pessimistic otherwise, so a breach
    is never hidden. A request that finished has both observed; the count behind the
    estimate is the smaller of the two histograms' counts.
    """
    shares: list[float] = []
    counts: list[float] = []
    for histogram, bound_s in ((ttft, tier.slo.ttft_s), (tpot, tier.slo.tpot_s)):
        if histogram is None:
            continue
        share = histogram.fraction_at_most(bound_s)
        if share is None:
            continue
        shares.append(share)
        counts.append(histogram.count)
    if not shares:
        return None, None
    combined = max(0.0, sum(shares) - (len(shares) - 1))
    return combined, min(counts)


def combined_attainment_most(
    ttft: Histogram | None, tpot: Histogram | None, tier: Tier
) -> float | None:
    """`combined_attainment` with TPOT read at the most share its buckets allow within
    its bound (TTFT linearly, as there), combined the same way."""
    shares: list[float] = []
    if ttft is not None and (share := ttft.fraction_at_most(tier.slo.ttft_s)) is not None:
        shares.append(share)
    if tpot is not None and (bounds := tpot.fraction_at_most_bounds(tier.slo.tpot_s)):
        shares.append(bounds[1])
    if not shares:
        return None
    return max(0.0, sum(shares) - (len(shares) - 1))


def _bucket(histogram: Histogram | None, q: float) -> tuple[float, float] | None:
    return None if histogram is None else histogram.quantile_bucket(q)


def _mean(histogram: Histogram | None) -> float | None:
    value = None if histogram is None else histogram.mean()
    return value if value is not None and value > 0.0 else None


def _quantile(histogram: Histogram | None, q: float) -> float | None:
    return None if histogram is None else histogram.quantile(q)


def _tokens_quantile(histogram: Histogram | None, tier: Tier) -> float | None:
    """The pool's request length at `TAIL_QUANTILE`, never beyond its `--max-model-len`."""
    if histogram is None:
        return None
    limit = tier.pool.max_model_len
    return histogram.quantile(TAIL_QUANTILE, at_most=None if limit is None else float(limit))
