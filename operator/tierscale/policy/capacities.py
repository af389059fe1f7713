"""Step 3: the rate one replica of each pool serves within the pool's SLO, per tier it may serve.

`cap[j][p]` is tier j's request rate one replica of pool p sustains at p's own (tighter or
equal) SLO for j's request lengths, from the predictor, divided by p's learned breach bias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from tierscale.domain.tiers import Tier
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier
from tierscale_predictor import capacity, latency

ModelSource = latency.LatencyModel | Mapping[str, latency.LatencyModel]
"""One latency model for every served model, or served model name -> latency model."""


def models_by_tier(tiers: Sequence[Tier], model: ModelSource) -> dict[str, latency.LatencyModel]:
    """tier key -> latency model of the tier's pool: its served model with the pool's own
    engine arguments (a smaller prefill chunk changes step times, and so capacity)."""
    if isinstance(model, latency.LatencyModel):
        by_name = {t.model: model for t in tiers}
    else:
        missing = sorted({t.model for t in tiers} - set(model))
        if missing:
            raise ValueError(f"no latency model for served model(s) {', '.join(missing)}")
        by_name = dict(model)
    out: dict[str, latency.LatencyModel] = {}
    for t in tiers:
        base = by_name[t.model]
        out[t.key] = replace(
            base,
            max_num_seqs=t.pool.max_num_seqs or base.max_num_seqs,
            max_num_batched_tokens=t.pool.max_num_batched_tokens or base.max_num_batched_tokens,
        )
    return out


def planning_percentile(tier: Tier) -> float:
    """The percentile each latency is planned at so that *both* meet the attainment target.

    A request attains its SLO only if TTFT and TPOT both hold, so the misses the target
    allows are split between the two (a union bound): p99.5 each for 99 %, p97.5 for 95 %.
    The attainment target is what `SLOMet`, the breach guard and the benchmarks judge, so
    it alone sizes the pools; the SLO's `percentile` is where latencies are stated and
    reported. Planning at max(percentile, split) instead held a 90 % tier to p99 (the
    default percentile): gen-s7-013's 95 % tier ran at 0.2-0.6 req/s per replica where the
    hindsight static fleet met it at about 2 (docs/planner.md, "Planning percentile").
    """
    split = 100.0 - 50.0 * (1.0 - tier.slo.attainment_frac)
    return min(split, 99.9)


def planning_slo(tier: Tier, cfg: PlannerConfig) -> latency.SloTarget:
    """What one replica of the tier's pool must meet, as the predictor checks it: each
    latency at `planning_percentile`, or with `PlannerConfig.tpot_miss_share` other than the
    equal split, the attainment target's misses split by need."""
    slo = latency.SloTarget(tier.slo.ttft_s, tier.slo.tpot_s, planning_percentile(tier))
    if cfg.tpot_miss_share == (0.5, 0.5):
        return slo
    return replace(
        slo, miss_frac=1.0 - tier.slo.attainment_frac, tpot_share_frac=cfg.tpot_miss_share
    )


def _may_spill(borrower: Tier, lender: Tier) -> bool:
    """Spillover goes only to a tighter (or equal) pool of the same model that lends.

    Between two tiers with the same SLO, only one direction: from the lower priority onto
    the higher priority's pool (equal priorities: onto the pool of the first key). Both
    directions at once make "gold 2 + silver 1" and "gold 1 + silver 2" equally cheap, so
    under a GPU budget the solver could give the higher priority's replicas to the lower
    one (its traffic then rides on the other pool) and alternate between the two from one
    decision to the next.
    """
    if not (
        borrower.key != lender.key
        and borrower.model == lender.model
        and borrower.borrow
        and lender.lend
        and lender.slo.at_least_as_tight_as(borrower.slo)
    ):
        return False
    if not borrower.slo.at_least_as_tight_as(lender.slo):
        return True  # the lender is strictly tighter somewhere
    return (lender.priority, borrower.key) > (borrower.priority, lender.key)


def own_pool_capacity_rps(
    model: latency.LatencyModel, tier: Tier, shape: latency.WorkloadShape, cfg: PlannerConfig
) -> float:
    """Requests/s of the tier one replica of its own pool serves, as `capacities` plans it
    with no bias learned (for benchmarks that compare it with the engine's)."""
    return _tail_robust_capacity(model, tier, shape, cfg, own=True)


def _tail_robust_capacity(
    model: latency.LatencyModel,
    tier: Tier,
    shape: latency.WorkloadShape,
    cfg: PlannerConfig,
    *,
    own: bool,
) -> float:
    return max(_capacity_parts(model, tier, shape, cfg, own=own))


def _capacity_parts(
    model: latency.LatencyModel,
    tier: Tier,
    shape: latency.WorkloadShape,
    cfg: PlannerConfig,
    *,
    own: bool,
) -> tuple[float, float, float]:
    """(at the observed tails, the typical-tails floor, the lean to the mean lengths):
    one replica's capacity is the largest of the three."""
    slo = planning_slo(tier, cfg)
    with_tails = capacity.max_rate_rps(model, slo, shape)
    floor = 0.0
    if shape.prompt_tokens_p99 is not None or shape.output_tokens_p99 is not None:
        typical = replace(shape, prompt_tokens_p99=None, output_tokens_p99=None)
        floor = cfg.tail_floor_frac * capacity.max_rate_rps(model, slo, typical)
    lean = tail_cliff_frac(model, tier, shape, cfg) if own else 0.0
    leaned = 0.0
    if lean > 0.0:
        # Sized (partly) for the mean lengths: never less than `lean` x half of what
        # requests of exactly the mean lengths get. The assumed-lognormal `typical`
        # floor alone is close to 0 near the lengths where it too stops meeting the SLO,
        # so capacity jumped 50x between decisions as the mean moved by a few tokens
        # (gen-s7-015: 1.84 and 0.03 req/s per replica in alternate decisions), and every
        # low draw bought replicas the scale-down window then held (91 replicas for
        # 9 req/s). `lean` rises continuously to 1 as an idle replica nears missing the
        # tail, so the capacity does not jump where it starts missing it either.
        fallback = capacity.max_rate_rps(model, slo, _without_tails(shape))
        leaned = lean * cfg.tail_floor_frac * fallback
    return with_tails, floor, leaned


def tail_cliff_frac(
    model: latency.LatencyModel, tier: Tier, shape: latency.WorkloadShape, cfg: PlannerConfig
) -> float:
    """How far the tier's own pool leans to the mean lengths, in [0, 1]: 1 where even an
    idle replica misses the planning percentile at these lengths (`tails_unattainable`),
    falling linearly to 0 at `PlannerConfig.tail_cliff_busy_frac`, the busy fraction a
    replica must still be allowed for its tail to count as attainable.

    Near that cliff a replica holds the tail only nearly idle, so replicas buy almost
    nothing for it: the long prompts that set it miss on any replica once the model is a
    little optimistic, while every replica bought for them is paid (gen-s20261130-024:
    a 2 s TTFT tier at p99.5 whose ~16,000-token p99 an idle replica served in 2.01-2.13 s
    was planned at 0.02-0.32 req/s per replica and held 14 replicas for the attainment
    2 replicas gave)."""
    busy = capacity.max_busy_frac(model, planning_slo(tier, cfg), shape)
    edge = cfg.tail_cliff_busy_frac
    if busy <= 0.0:
        return 1.0
    if edge <= 0.0 or busy >= edge:
        return 0.0
    return 1.0 - busy / edge


def lean_busy_frac(
    model: latency.LatencyModel, tier: Tier, shape: latency.WorkloadShape, cfg: PlannerConfig
) -> float | None:
    """The busy fraction up to which an idle replica holds the tail, where the lean to
    the mean lengths (`tail_cliff_frac`, short of 1) sets the tier's own capacity; None
    where it does not (no tail near the cliff, or one no replica meets at all)."""
    with_tails, floor, leaned = _capacity_parts(model, tier, shape, cfg, own=True)
    if leaned <= max(with_tails, floor):
        return None
    busy = capacity.max_busy_frac(model, planning_slo(tier, cfg), shape)
    return busy if busy > 0.0 else None


def _without_tails(shape: latency.WorkloadShape) -> latency.WorkloadShape:
    """Every request at the mean lengths (the tails' p99 equal to the means)."""
    return latency.WorkloadShape(
        shape.prompt_tokens_mean,
        shape.output_tokens_mean,
        prompt_tokens_p99=shape.prompt_tokens_mean,
        output_tokens_p99=shape.output_tokens_mean,
    )


def tails_unattainable(
    model: latency.LatencyModel, tier: Tier, shape: latency.WorkloadShape, cfg: PlannerConfig
) -> bool:
    """Even an idle replica of the tier's pool misses its SLO's planning percentile for
    these lengths: the pool's capacity is then at most the tail fallback (see
    `capacities`), a rough number, not one the SLO percentile was met at."""
    return capacity.max_busy_frac(model, planning_slo(tier, cfg), shape) == 0.0


LENDER_MAX_BIAS = 1.05
"""A pool whose learned breach bias exceeds this lends nothing: the model has just been
shown optimistic about it (one breach's x1.15 decays below 1.05 in 11 decisions)."""


def lender_trouble(pool: LiveTier) -> str | None:
    """Why the pool lends nothing now, or None: it may carry other tiers' requests.

    A borrower must never end below what it gets isolated, so spillover goes only to a
    pool observed healthy: its SLO not observed breached, its model not biased up by a
    recent breach, and none of its own replicas still loading (a pool that is scaling up
    for its own demand has no spare capacity to lend). Traffic it carried for others goes
    back to their own pools at this decision (routing uses the same capacities)."""
    if pool.slo_breached:
        return "its SLO is observed breached"
    if pool.bias > LENDER_MAX_BIAS:
        return f"its model bias x{pool.bias:.2f} > x{LENDER_MAX_BIAS:.2f} after a recent breach"
    if pool.ready_replicas < pool.current_replicas:
        loading = pool.current_replicas - pool.ready_replicas
        return f"{loading} of its replicas still loading"
    return None


def lenders_in_trouble(live: Sequence[LiveTier]) -> dict[str, str]:
    """pool key -> why it lends nothing now (`lender_trouble`), for the pools that don't."""
    return {p.tier.key: why for p in live if (why := lender_trouble(p)) is not None}


def capacities(
    live: Sequence[LiveTier],
    models: Mapping[str, latency.LatencyModel],
    cfg: PlannerConfig,
    trouble: Mapping[str, str],
) -> dict[str, dict[str, float]]:
    """tier key -> pool key -> requests/s of that tier one replica of that pool serves.

    `trouble` (pool key -> why, from `lenders_in_trouble` on the observed pools) names
    the pools that lend nothing: decided once per plan, so a variant of `live` (the lean
    problem's, without the bias) lends exactly where the full problem and the routing do.

    Where even an idle replica of a tier's own pool misses the SLO's planning percentile
    (the p99 prompts alone take longer than the TTFT SLO), the pool is still sized, at
    `tail_floor_frac` of the capacity for requests of the mean lengths: replicas cannot
    make the longest prompts meet the SLO, but too few of them queue every request
    (gen-s7-009: one replica for 1.5 req/s of 4,700-token prompts, p99 TTFT 157 s, while
    the planner, with capacity 0, scaled only on breaches). No spillover is sized that
    way: a lender's capacity for a borrower's requests stays 0 where its SLO cannot hold.
    """
    cache: dict[tuple[str, str, bool], float] = {}
    caps: dict[str, dict[str, float]] = {}
    for j in live:
        caps[j.tier.key] = {}
        for p in live:
            if p.tier.key != j.tier.key and (
                p.tier.key in trouble or not _may_spill(j.tier, p.tier)
            ):
                continue
            own = p.tier.key == j.tier.key
            key = (p.tier.key, f"{j.shape}", own)
            if key not in cache:
                given = cfg.own_capacity_rps_by_tier.get(p.tier.key, 0.0) if own else 0.0
                cache[key] = (
                    given
                    if given > 0.0
                    else _tail_robust_capacity(models[p.tier.key], p.tier, j.shape, cfg, own=own)
                )
                cache[key] /= p.bias
            caps[j.tier.key][p.tier.key] = cache[key]
    return caps
