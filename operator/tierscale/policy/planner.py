"""The joint tier planner: one pure function the operator and the simulator both call.

    plan(tiers, observations, model, state, now_s, budget) -> Plan

Each call runs the same named steps, so a decision can be read (and replayed) step by step:

1. observe  - split tiers into live ones (fresh metrics) and held ones (missing or stale
              metrics: their Deployment is left alone and the last decision is kept);
2. forecast - demand over each tier's cold-start horizon (`forecast.py`);
3. capacity - for every tier j and every pool p it may use, the rate one replica of p
              serves within p's SLO for j's request lengths (the predictor), discounted by
              the bias learned from observed SLO breaches;
4. allocate - integer replicas and spillover flows, exactly (`allocation.py`, HiGHS MILP),
              inside the GPU budget, unserved demand degraded lowest priority first;
5. guard    - an observed SLO breach scales up even when the model disagrees;
6. stabilise- scale up at once, scale down only after the window (`stabilize.py`);
7. route    - today's traffic split over the replicas that are Ready now, so spillover
              absorbs demand while new replicas load;
8. explain  - a reason code and one human sentence per tier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import Plan, PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import allocation, forecast, stabilize
from tierscale_predictor import calibration, capacity, latency

ForecastConfig = forecast.ForecastConfig
CalibrationSettings = calibration.CalibrationSettings
"""Aliases, so PlannerConfig's field annotations name types, not its own fields (the
serialiser resolves annotations by name: `forecast.ForecastConfig` inside the class
would find the field `forecast`)."""


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Knobs of the planner; every default is what the operator ships with."""

    stale_after_s: float = 90.0
    """Metrics older than this are stale: the tier is held, never scaled on old data."""
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    default_prompt_tokens: float = 1024.0
    """Prompt length assumed before any request of a tier has been seen."""
    default_output_tokens: float = 256.0
    breach_quantile_margin: float = 0.1
    """Without attainment data, a percentile latency above (1 + margin) x SLO is a breach."""
    breach_z: float = 2.33
    """One-sided confidence (99 %) that observed misses exceed what the SLO allows."""
    breach_min_misses: float = 3.0
    """Fewer missed requests than this in a window never count as a breach."""
    bias_step: float = 1.15
    """Each significant breach multiplies the learned bias by this."""
    max_bias: float = 2.0
    """Largest correction learned from breaches: bounded, so noise cannot ratchet forever."""
    bias_decay: float = 0.9
    """Per decision without a breach, the learned bias keeps this share of its excess over 1."""
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    """How fast and how far the pool models follow the pools' observed percentiles."""
    calibration_min_tail_requests: float = 3.0
    """Calibrate only on windows with this many requests beyond the SLO percentile
    (300 requests for a p99): a p99 of 60 requests is the slowest request, not a p99."""
    margins_yield_to_demand: bool = True
    """Under a binding GPU budget, serve every tier's observed demand (by priority) before
    any tier's forecast margins and learned bias (see `_margins_last`)."""
    length_smoothing: float = 0.1
    """Weight of the newest window in the smoothed p99 request lengths (1 = none). 0.1
    (time constant ~2.5 min at 15 s decisions), measured by `bench/planner_ablation.py`
    (2 seeds) against no smoothing: diurnal ramp 17.90 -> 15.67 GPU-hours, S2 at 80 %
    load 86.6 -> 96.6 % of requests in SLO; conversation trace 6.93 -> 7.00 GPU-hours."""
    calibrate_tpot: bool = False
    """Learn a TPOT multiplier per pool from its observed SLO-percentile TPOT. Off by
    default on the measurements of `bench/planner_ablation.py` (2 seeds): it helped where
    the fitted model is optimistic (S3 conversation trace: 7.00 -> 6.79 GPU-h, standard
    tier 99.43 -> 99.82 %), but a window's percentile is noisy enough that, under a
    binding GPU budget, its upward swings starve the lowest tier (S2 at 80 % load: 96.6 ->
    88.5 % of requests in SLO), and on the bursty code trace it bought 64 % more
    GPU-hours (7.08 -> 11.61). The breach guard's bias, which reacts only to significant
    misses, stays on."""
    calibrate_ttft: bool = False
    """Also learn a TTFT multiplier. Off: a TTFT percentile mixes the model's error with
    queueing from arrival bursts the Poisson model does not know, and a multiplier on a
    queueing-dominated latency near its knee moves capacity a lot between windows (same
    benchmark, conversation trace: TPOT+TTFT vs default +14 % GPU-hours for +0.34 points
    on the interactive tier; budget crunch: standard 27.6 -> 12.1 %). TPOT is the step
    time itself, the quantity the fitted model predicts."""
    calibration_step: float = 0.02
    """Multipliers are kept on this grid, so unchanged pools hit the capacity cache."""
    tail_floor_frac: float = 0.5
    """Capacity is never planned below this share of the capacity for the same mean lengths
    without the observed p99 tails: the longest prompts miss a tight TTFT even on an idle
    replica, so replicas bought for them buy nothing (a single 10k-token prompt in the
    window once drove a tier to maxReplicas). Significant observed misses still scale up
    through the breach guard."""


@dataclass(frozen=True, slots=True)
class _Live:
    """A tier with fresh metrics, prepared for allocation."""

    tier: Tier
    observation: TierObservation
    lengths: tuple[float, float, float | None, float | None]
    """Smoothed prompt mean, output mean, prompt p99, output p99 (tokens)."""
    shape: latency.WorkloadShape
    demand: forecast.Forecast
    current_replicas: int
    ready_replicas: int
    breached: bool
    bias: float
    shortfall_planned: bool


ModelSource = latency.LatencyModel | Mapping[str, latency.LatencyModel]
_V = TypeVar("_V")


def plan(
    *,
    tiers: Sequence[Tier],
    observations: Observations,
    model: ModelSource,
    now_s: float,
    state: PlannerState | None = None,
    budget: GpuBudget | None = None,
    config: PlannerConfig | None = None,
    conflicts: Mapping[str, str] | None = None,
    invalid: Mapping[str, str] | None = None,
) -> Plan:
    """Decide replicas and routing for every tier jointly; see the module docstring.

    `now_s` is the decision time on the observations' clock (seconds): an observation
    sampled after it, or more than `config.stale_after_s` before it, is stale and its tier
    is held. Of two tiers naming one Deployment, the later in `tiers` is InvalidSpec and
    nothing is planned for it (shells pass tiers oldest first). `conflicts` names the tiers
    whose Deployment another writer scales (tier key -> who): they are held at the
    replicas they have, like tiers with stale metrics, with reason Conflict. `invalid`
    names tiers the shell found unusable (tier key -> why, e.g. their Deployment does not
    exist): InvalidSpec, nothing planned for them, nothing of theirs touched.
    """
    cfg = config or PlannerConfig()
    prior = state or PlannerState()
    rejected = {
        key: TierDecision(
            tier_key=key,
            desired_replicas=0,
            weights_by_pool={},
            reason=Reason.INVALID_SPEC,
            message=why,
        )
        for key, why in (invalid or {}).items()
    }
    tiers, duplicate = _one_tier_per_deployment(
        [t for t in tiers if t.key not in rejected], observations, prior
    )
    contested = dict(conflicts or {})
    live, held = _observe(tiers, observations, prior, now_s, cfg, contested)
    models = _calibrated(live, _models_by_tier(tiers, model), prior, cfg)
    caps = _capacities(live, models, cfg)
    problem = allocation.AllocationProblem(
        pools=[_lender_spec(t, live, caps) for t in live] + [_pool_spec(t) for t in held],
        demands=[
            allocation.DemandSpec(t.tier.key, t.demand.rate_rps, t.tier.priority, caps[t.tier.key])
            for t in live
        ],
        budgets=_gpu_caps(tiers, budget),
        fixed_replicas_by_pool={t.key: _held_replicas(t, observations, prior) for t in held},
    )
    target = allocation.solve(problem)
    if target.unserved_rps() > 0.0 and cfg.margins_yield_to_demand:
        target = _margins_last(live, models, problem, target, cfg)
    raw = {t.tier.key: _guarded(t, target.replicas_by_pool[t.tier.key]) for t in live}
    stable = {t.tier.key: _stabilized(t, raw[t.tier.key], prior, now_s, models) for t in live}
    desired = _fit_budget(live, stable, target.replicas_by_pool, problem)
    routing = _route_now(live, caps, desired)
    decisions = {
        t.tier.key: _explain(
            t, desired[t.tier.key], stable[t.tier.key], raw, target, routing, caps, models
        )
        for t in live
    }
    for tier in held:
        decisions[tier.key] = _hold(tier, observations, prior, now_s, cfg, contested.get(tier.key))
    total = sum(d.gpus for d in decisions.values())
    decisions.update(duplicate)
    decisions.update(rejected)
    new_state = PlannerState(
        recommendations_by_tier=_carried(
            prior.recommendations_by_tier, held, {k: s.history for k, s in stable.items()}
        ),
        last_plan_at_s=now_s,
        bias_by_tier=_carried(prior.bias_by_tier, held, {t.tier.key: t.bias for t in live}),
        last_decisions=decisions,
        lengths_by_tier=_carried(
            prior.lengths_by_tier, held, {t.tier.key: t.lengths for t in live}
        ),
        correction_by_tier=_carried(
            prior.correction_by_tier,
            held,
            {t.tier.key: _multipliers(models[t.tier.key]) for t in live},
        ),
    )
    limited = any(d.reason is Reason.BUDGET_LIMITED for d in decisions.values())
    return Plan(now_s, decisions, new_state, total, limited, target.status)


def _one_tier_per_deployment(
    tiers: Sequence[Tier], observations: Observations, prior: PlannerState
) -> tuple[list[Tier], dict[str, TierDecision]]:
    """Each Deployment has one owner: the first tier naming it. A later tier naming the same
    Deployment is InvalidSpec, gets no replicas and no routes of its own planned, and its
    Deployment is left to its owner (planning both gave one tier 1 replica, the other 0)."""
    owner_by_pool: dict[tuple[str, str], Tier] = {}
    kept: list[Tier] = []
    invalid: dict[str, TierDecision] = {}
    for tier in tiers:
        pool = (tier.namespace, tier.pool.deployment)
        owner = owner_by_pool.get(pool)
        if owner is None:
            owner_by_pool[pool] = tier
            kept.append(tier)
            continue
        invalid[tier.key] = TierDecision(
            tier_key=tier.key,
            desired_replicas=_held_replicas(owner, observations, prior),
            weights_by_pool={},
            reason=Reason.INVALID_SPEC,
            message=(
                f"Deployment {tier.namespace}/{tier.pool.deployment} is already the pool of "
                f"SLOTier {owner.key}; {tier.key} is not planned until it names a Deployment "
                "of its own"
            ),
        )
    return kept, invalid


def _carried(
    before: Mapping[str, _V], held: Sequence[Tier], fresh: Mapping[str, _V]
) -> dict[str, _V]:
    """Held tiers keep what was learned about them; live tiers take this decision's values."""
    return {**{t.key: before[t.key] for t in held if t.key in before}, **fresh}


# 1. observe ---------------------------------------------------------------------------


def _observe(
    tiers: Sequence[Tier],
    observations: Observations,
    prior: PlannerState,
    now_s: float,
    cfg: PlannerConfig,
    contested: Mapping[str, str],
) -> tuple[list[_Live], list[Tier]]:
    live: list[_Live] = []
    held: list[Tier] = []
    for tier in sorted(tiers, key=lambda t: t.key):
        obs = observations.get(tier.key)
        if tier.key in contested or obs is None or obs.rate_rps is None or _stale(obs, now_s, cfg):
            held.append(tier)
            continue
        current = obs.current_replicas
        if current is None:
            last = prior.last_decisions.get(tier.key)
            current = last.desired_replicas if last else tier.pool.min_replicas
        ready = obs.ready_replicas if obs.ready_replicas is not None else current
        # While ordered replicas still load, the breach they answer stays visible for a
        # cold start plus a metrics window; counting it again would stack replicas.
        breached = ready >= current and _breached(tier, obs, cfg)
        short = _shortfall_planned(prior.last_decisions.get(tier.key))
        lengths = _smoothed_lengths(obs, prior, cfg)
        bias = _next_bias(prior.bias_by_tier.get(tier.key, 1.0), breached and not short, cfg)
        live.append(
            _Live(
                tier=tier,
                observation=obs,
                lengths=lengths,
                shape=_shape(lengths),
                demand=forecast.forecast_rate(
                    obs.rate_rps,
                    obs.rate_history_rps,
                    now_s,
                    tier.scaling.cold_start_s,
                    cfg.forecast,
                ),
                current_replicas=current,
                ready_replicas=min(ready, current),
                breached=breached,
                bias=bias,
                shortfall_planned=short,
            )
        )
    return live, held


def _stale(obs: TierObservation, now_s: float, cfg: PlannerConfig) -> bool:
    """Sampled after the decision time (a clock or replay mix-up) or too long before it."""
    return obs.sampled_at_s > now_s or now_s - obs.sampled_at_s > cfg.stale_after_s


def _smoothed_lengths(
    obs: TierObservation, prior: PlannerState, cfg: PlannerConfig
) -> tuple[float, float, float | None, float | None]:
    """Request lengths with the p99s smoothed across decisions (EWMA in log space).

    One window's p99 prompt rests on a handful of requests and moves capacity from tick
    to tick; scale-up acts at once and scale-down waits for the window, so every unlucky
    draw bought replicas (see `length_smoothing` for what it cost). Means rest on every
    request and stay as observed, so a
    real shift in lengths still counts at once.
    """
    raw = (
        obs.prompt_tokens_mean or cfg.default_prompt_tokens,
        obs.output_tokens_mean or cfg.default_output_tokens,
        obs.prompt_tokens_p99,
        obs.output_tokens_p99,
    )
    old = prior.lengths_by_tier.get(obs.tier_key)
    if old is None:
        return raw
    a = cfg.length_smoothing

    def blend(new: float | None, before: float | None) -> float | None:
        if new is None or new <= 0.0:
            return before
        if before is None or before <= 0.0:
            return new
        return math.exp(a * math.log(new) + (1.0 - a) * math.log(before))

    return (raw[0], raw[1], blend(raw[2], old[2]), blend(raw[3], old[3]))


def _shape(lengths: tuple[float, float, float | None, float | None]) -> latency.WorkloadShape:
    """Request lengths, rounded to 2 significant digits so capacity lookups repeat exactly."""
    prompt, output, prompt_p99, output_p99 = lengths
    return latency.WorkloadShape(
        prompt_tokens_mean=_round_sig(prompt),
        output_tokens_mean=_round_sig(output),
        prompt_tokens_p99=_round_sig(max(prompt_p99, prompt)) if prompt_p99 else None,
        output_tokens_p99=_round_sig(max(output_p99, output)) if output_p99 else None,
    )


def _round_sig(value: float, digits: int = 2) -> float:
    if value <= 0.0:
        return 1.0
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return max(round(value * scale) / scale, 1.0)


def _breached(tier: Tier, obs: TierObservation, cfg: PlannerConfig) -> bool:
    """Is the SLO broken beyond what sampling noise explains?

    A 99th percentile over a one-minute window rests on a handful of requests, so a
    single slow request "breaks" it often; reacting to that ratchets replicas up for
    nothing. With attainment data, a breach needs the missed share to exceed what the
    target allows by a one-sided binomial margin; without it, the percentile latency
    must exceed the SLO by a margin.
    """
    if not obs.rate_rps:
        return False
    if obs.attainment_frac is not None:
        requests = obs.window_requests or obs.rate_rps * obs.window_s
        if requests <= 0:
            return False
        allowed = 1.0 - tier.slo.attainment_frac
        missed = 1.0 - obs.attainment_frac
        noise = cfg.breach_z * math.sqrt(max(allowed * (1.0 - allowed), 1e-12) / requests)
        return missed > allowed + noise and missed * requests >= cfg.breach_min_misses
    limit = 1.0 + cfg.breach_quantile_margin
    ttft_bad = obs.ttft_s is not None and obs.ttft_s > tier.slo.ttft_s * limit
    tpot_bad = obs.tpot_s is not None and obs.tpot_s > tier.slo.tpot_s * limit
    return ttft_bad or tpot_bad


def _shortfall_planned(last: TierDecision | None) -> bool:
    """Did the last plan already know this tier would be short (budget, maxReplicas)?

    A breach the plan predicted says nothing about the model; learning from it would
    shrink the capacity of a tier the budget starves, which then looks even shorter of
    GPUs, a spiral that starved S2's largest tier down to a single replica.
    """
    return last is not None and last.unserved_rate_rps > 0.0


def _next_bias(bias: float, breached: bool, cfg: PlannerConfig) -> float:
    """Learn how much the model underestimates this pool: grows on breaches, decays otherwise."""
    if not breached:
        return 1.0 + (bias - 1.0) * cfg.bias_decay
    return min(max(bias, 1.0) * cfg.bias_step, cfg.max_bias)


# 3. capacity --------------------------------------------------------------------------


def _models_by_tier(tiers: Sequence[Tier], model: ModelSource) -> dict[str, latency.LatencyModel]:
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


def _calibrated(
    live: Sequence[_Live],
    models: Mapping[str, latency.LatencyModel],
    prior: PlannerState,
    cfg: PlannerConfig,
) -> dict[str, latency.LatencyModel]:
    """Each pool's model, corrected towards the percentiles the pool itself showed.

    vLLM's histograms are the ground truth the fitted model approximates; the correction
    (an EWMA in log space, clamped, in `tierscale_predictor.calibration`) is learned only
    from windows that can carry it: a steady pool with enough requests beyond the SLO
    percentile, at a load the model calls stable. Otherwise the last correction holds.
    """
    out = dict(models)
    for t in live:
        key = t.tier.key
        ttft_mult, tpot_mult = prior.correction_by_tier.get(key, (1.0, 1.0))
        model = models[key].with_correction(latency.Correction(ttft_mult, tpot_mult))
        seen = _calibration_sample(t, cfg)
        if seen is not None:
            learned = calibration.recalibrate(model, seen, cfg.calibration).model.correction
            model = model.with_correction(
                latency.Correction(
                    _on_grid(learned.ttft_mult, cfg.calibration_step),
                    _on_grid(learned.tpot_mult, cfg.calibration_step),
                )
            )
        out[key] = model
    return out


def _calibration_sample(t: _Live, cfg: PlannerConfig) -> calibration.Observed | None:
    obs = t.observation
    pool_rate = obs.pool_rate_rps
    if pool_rate is None or pool_rate <= 0.0:
        return None
    tpot_seen = cfg.calibrate_tpot and obs.tpot_s is not None
    ttft_seen = cfg.calibrate_ttft and obs.ttft_s is not None
    if not (tpot_seen or ttft_seen):
        return None
    if t.ready_replicas < 1 or t.ready_replicas != t.current_replicas:
        return None  # replicas loading or draining: the window mixes two pool sizes
    if t.shortfall_planned:
        return None  # a pool knowingly run short is slow by plan, not by model error
    beyond = 1.0 - t.tier.slo.percentile / 100.0
    if pool_rate * obs.window_s * beyond < cfg.calibration_min_tail_requests:
        return None
    return calibration.Observed(
        rate_rps=pool_rate / t.ready_replicas,
        shape=t.shape,
        percentile=t.tier.slo.percentile,
        ttft_s=obs.ttft_s if ttft_seen else None,
        tpot_s=obs.tpot_s if tpot_seen else None,
    )


def _on_grid(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def _multipliers(model: latency.LatencyModel) -> tuple[float, float]:
    return (model.correction.ttft_mult, model.correction.tpot_mult)


def _planning_percentile(tier: Tier) -> float:
    """The percentile each latency is planned at so that *both* meet the attainment target.

    A request attains its SLO only if TTFT and TPOT both hold. Planning each at the SLO's
    own percentile lets their misses add up (p99 and p99 can attain ~98 %); splitting the
    allowed misses between the two (a union bound) guarantees the attainment target.
    """
    split = 100.0 - 50.0 * (1.0 - tier.slo.attainment_frac)
    return min(max(tier.slo.percentile, split), 99.9)


def _slo_target(tier: Tier) -> latency.SloTarget:
    return latency.SloTarget(tier.slo.ttft_s, tier.slo.tpot_s, _planning_percentile(tier))


def _may_spill(borrower: Tier, lender: Tier) -> bool:
    """Spillover goes only to a tighter (or equal) pool of the same model that lends."""
    return (
        borrower.key != lender.key
        and borrower.model == lender.model
        and borrower.borrow
        and lender.lend
        and lender.slo.at_least_as_tight_as(borrower.slo)
    )


def _tail_robust_capacity(
    model: latency.LatencyModel, tier: Tier, shape: latency.WorkloadShape, cfg: PlannerConfig
) -> float:
    slo = _slo_target(tier)
    with_tails = capacity.max_rate_rps(model, slo, shape)
    if shape.prompt_tokens_p99 is None and shape.output_tokens_p99 is None:
        return with_tails
    typical = replace(shape, prompt_tokens_p99=None, output_tokens_p99=None)
    return max(with_tails, cfg.tail_floor_frac * capacity.max_rate_rps(model, slo, typical))


def _capacities(
    live: Sequence[_Live], models: Mapping[str, latency.LatencyModel], cfg: PlannerConfig
) -> dict[str, dict[str, float]]:
    """tier key -> pool key -> requests/s of that tier one replica of that pool serves."""
    cache: dict[tuple[str, str], float] = {}
    caps: dict[str, dict[str, float]] = {}
    for j in live:
        caps[j.tier.key] = {}
        for p in live:
            if p.tier.key != j.tier.key and not _may_spill(j.tier, p.tier):
                continue
            key = (p.tier.key, f"{j.shape}")
            if key not in cache:
                cache[key] = _tail_robust_capacity(models[p.tier.key], p.tier, j.shape, cfg)
                cache[key] /= p.bias
            caps[j.tier.key][p.tier.key] = cache[key]
    return caps


# 4. allocate --------------------------------------------------------------------------


def _margins_last(
    live: Sequence[_Live],
    models: Mapping[str, latency.LatencyModel],
    problem: allocation.AllocationProblem,
    full: allocation.Allocation,
    cfg: PlannerConfig,
) -> allocation.Allocation:
    """When GPUs run short, every tier's present demand comes before any tier's margins.

    The full plan provisions each tier for its forecast (bursts, trend over the cold
    start) with the learned breach bias; under a binding budget, strict priority then
    spends a higher tier's safety margins before a lower tier's requests of today. So a
    lean problem first (demand as observed now, no bias) fixes each tier's floor by
    priority, and the full problem then spends what is left on margins, again by
    priority. 6-GPU budget crunch (`bench/planner_ablation.py`, 2 seeds): standard 20 ->
    28 %, batch 5 -> 14 % of requests in SLO, interactive 97.0 -> 96.0 %.
    """
    lean_caps = _capacities([replace(t, bias=1.0) for t in live], models, cfg)
    lean = allocation.solve(
        replace(
            problem,
            demands=[
                allocation.DemandSpec(
                    t.tier.key,
                    min(t.observation.rate_rps or 0.0, t.demand.rate_rps),
                    t.tier.priority,
                    lean_caps[t.tier.key],
                )
                for t in live
            ],
        )
    )
    if lean.status != "optimal":
        return full
    floors = {
        p.name: min(max(p.min_replicas, lean.replicas_by_pool.get(p.name, 0)), p.max_replicas)
        for p in problem.pools
    }
    return allocation.solve(
        replace(problem, pools=[replace(p, min_replicas=floors[p.name]) for p in problem.pools])
    )


def _pool_spec(tier: Tier) -> allocation.PoolSpec:
    return allocation.PoolSpec(
        tier.key, tier.pool.gpus_per_replica, tier.pool.min_replicas, tier.pool.max_replicas
    )


def _lender_spec(
    pool: _Live, live: Sequence[_Live], caps: Mapping[str, Mapping[str, float]]
) -> allocation.PoolSpec:
    """A pool others may spill into is never grown for their sake: they use its spare room.

    Spillover borrows the rounding slack of a tighter pool (PolyServe's idea); a replica
    added to a tight pool to carry loose traffic is a replica the loose pool would run
    more efficiently. Without this bound the solver is indifferent between the two when
    GPUs run short, and its choice flips between ticks: S2 runs moved replicas
    from the 100 ms pool to the 50 ms pool and back.
    """
    spec = _pool_spec(pool.tier)
    key = pool.tier.key
    if not any(j.tier.key != key and key in caps[j.tier.key] for j in live):
        return spec
    own_capacity_rps = caps[key].get(key, 0.0)
    demand_rps = pool.demand.rate_rps
    own_need = math.ceil(demand_rps / own_capacity_rps - 1e-9) if own_capacity_rps > 0 else 0
    bound = min(max(own_need, spec.min_replicas), spec.max_replicas)
    return replace(spec, max_replicas=bound)


def _gpu_caps(tiers: Sequence[Tier], budget: GpuBudget | None) -> list[allocation.GpuCap]:
    if budget is None:
        return []
    caps = []
    if budget.total_gpus is not None:
        caps.append(allocation.GpuCap(frozenset(t.key for t in tiers), budget.total_gpus))
    for model_name, gpus in budget.by_model:
        pools = frozenset(t.key for t in tiers if t.model == model_name)
        if pools:
            caps.append(allocation.GpuCap(pools, gpus))
    return caps


def _held_replicas(tier: Tier, observations: Observations, prior: PlannerState) -> int:
    """Replicas a held tier keeps: what runs now if known, else what was last decided."""
    obs = observations.get(tier.key)
    if obs is not None and obs.current_replicas is not None:
        return obs.current_replicas
    last = prior.last_decisions.get(tier.key)
    return last.desired_replicas if last else tier.pool.min_replicas


# 5-6. guard and stabilise -------------------------------------------------------------


def _guarded(live: _Live, replicas: int) -> int:
    """An observed breach adds a replica even if the model thinks the pool is big enough."""
    if live.breached and live.observation.rate_rps:
        replicas = max(replicas, live.current_replicas + 1)
    return min(max(replicas, live.tier.pool.min_replicas), live.tier.pool.max_replicas)


def _stabilized(
    live: _Live,
    raw: int,
    prior: PlannerState,
    now_s: float,
    models: Mapping[str, latency.LatencyModel],
) -> stabilize.Stabilized:
    obs = live.observation
    floor = max(
        live.tier.pool.min_replicas,
        stabilize.inflight_floor(
            obs.running_requests, obs.waiting_requests, models[live.tier.key].max_num_seqs
        ),
    )
    result = stabilize.stabilize(
        raw_replicas=raw,
        current_replicas=live.current_replicas,
        history=prior.recommendations_by_tier.get(live.tier.key, ()),
        now_s=now_s,
        window_s=live.tier.scaling.scale_down_stabilization_s,
        max_up=live.tier.scaling.max_scale_up_replicas,
        max_down=live.tier.scaling.max_scale_down_replicas,
        floor_replicas=floor,
    )
    bounded = min(max(result.replicas, live.tier.pool.min_replicas), live.tier.pool.max_replicas)
    return replace(result, replicas=bounded)


def _fit_budget(
    live: Sequence[_Live],
    stable: Mapping[str, stabilize.Stabilized],
    target: Mapping[str, int],
    problem: allocation.AllocationProblem,
) -> dict[str, int]:
    """Replicas beyond the exact allocation give way, lowest priority first, when GPUs run short.

    The stabiliser (holding replicas through its window) and the breach guard (adding one)
    may ask for more than the allocation; the allocation itself always fits every GPU cap,
    so trimming back toward it always restores the budget.
    """
    desired = {key: s.replicas for key, s in stable.items()}
    gpus_by_pool = {p.name: p.gpus_per_replica for p in problem.pools}
    everything = {**dict(problem.fixed_replicas_by_pool), **desired}
    for cap in problem.budgets:
        over = sum(gpus_by_pool[k] * everything.get(k, 0) for k in cap.pools) - cap.gpus
        for t in sorted(live, key=lambda t: (t.tier.priority, t.tier.key)):
            key = t.tier.key
            if over <= 0:
                break
            if key not in cap.pools or desired[key] <= target[key]:
                continue
            cut = min(desired[key] - target[key], math.ceil(over / gpus_by_pool[key]))
            desired[key] -= cut
            everything[key] = desired[key]
            over -= cut * gpus_by_pool[key]
    return desired


# 7. route -----------------------------------------------------------------------------


def _route_now(
    live: Sequence[_Live],
    caps: Mapping[str, Mapping[str, float]],
    desired: Mapping[str, int],
) -> allocation.Allocation:
    """Split today's demand over the replicas that serve until the next decision.

    New replicas may still be loading and replicas this plan removes start draining at
    once, so only Ready replicas that stay count: routing spillover onto replicas being
    removed would overload the ones left until the next tick.
    """
    problem = allocation.AllocationProblem(
        pools=[_pool_spec(t.tier) for t in live],
        demands=[
            allocation.DemandSpec(
                t.tier.key, t.observation.rate_rps or 0.0, t.tier.priority, caps[t.tier.key]
            )
            for t in live
        ],
        fixed_replicas_by_pool={
            t.tier.key: min(t.ready_replicas, desired[t.tier.key]) for t in live
        },
    )
    return allocation.route(problem)


def _weights(key: str, routing: allocation.Allocation) -> dict[str, float]:
    flows = {
        pool: rps
        for (tier, pool), rps in routing.flow_rps_by_demand_pool.items()
        if tier == key and rps > 1e-9
    }
    # Demand nobody can serve yet waits at its own pool (its replicas may be loading).
    unserved = routing.unserved_rps_by_demand.get(key, 0.0)
    if unserved > 0.0:
        flows[key] = flows.get(key, 0.0) + unserved
    total = sum(flows.values())
    if total <= 0.0:
        return {key: 1.0}
    return {pool: rps / total for pool, rps in sorted(flows.items())}


# 8. explain ---------------------------------------------------------------------------


def _explain(
    live: _Live,
    desired: int,
    stable: stabilize.Stabilized,
    raw: Mapping[str, int],
    target: allocation.Allocation,
    routing: allocation.Allocation,
    caps: Mapping[str, Mapping[str, float]],
    models: Mapping[str, latency.LatencyModel],
) -> TierDecision:
    tier, key = live.tier, live.tier.key
    planned = target.flow_rps_by_demand_pool
    spill_out = sum(rps for (t, p), rps in planned.items() if t == key and p != key)
    spill_in = sum(rps for (t, p), rps in planned.items() if p == key and t != key)
    unserved = target.unserved_rps_by_demand.get(key, 0.0)
    own_cap = caps[key].get(key, 0.0)
    pool_load = sum(
        rps / caps[t][key] for (t, p), rps in planned.items() if p == key and caps[t].get(key)
    )
    ttft_s, tpot_s = _predicted(live, desired, pool_load * own_cap, models)
    reason, message = _reason(live, desired, stable, raw[key], unserved, spill_out, target)
    return TierDecision(
        tier_key=key,
        desired_replicas=desired,
        weights_by_pool=_weights(key, routing),
        reason=reason,
        message=message,
        forecast_rate_rps=live.demand.rate_rps,
        served_rate_rps=max(live.demand.rate_rps - unserved, 0.0),
        unserved_rate_rps=unserved,
        predicted_ttft_s=ttft_s,
        predicted_tpot_s=tpot_s,
        capacity_rps_per_replica=own_cap,
        spill_in_rps=spill_in,
        spill_out_rps=spill_out,
        admission_cap_rps=min(live.ready_replicas, desired) * own_cap,
        gpus=desired * tier.pool.gpus_per_replica,
        model_correction=_multipliers(models[key]),
    )


def _predicted(
    live: _Live,
    replicas: int,
    own_equivalent_rps: float,
    models: Mapping[str, latency.LatencyModel],
) -> tuple[float | None, float | None]:
    """Predicted SLO-percentile latency on the tier's own pool at the planned load."""
    if replicas <= 0:
        return None, None
    prediction = latency.predict(
        models[live.tier.key],
        own_equivalent_rps / replicas,
        live.shape,
        live.tier.slo.percentile,
    )
    return prediction.ttft_s * live.bias, prediction.tpot_s * live.bias


def _reason(
    live: _Live,
    desired: int,
    stable: stabilize.Stabilized,
    raw: int,
    unserved: float,
    spill_out: float,
    target: allocation.Allocation,
) -> tuple[Reason, str]:
    tier, current = live.tier, live.current_replicas
    rate = live.demand.rate_rps
    change = f"{current} -> {desired} replicas"
    if unserved > 1e-6:
        share = unserved / rate if rate else 1.0
        if desired >= tier.pool.max_replicas:
            return Reason.AT_MAX, (
                f"{change}: at maxReplicas; {unserved:.2f} of {rate:.2f} req/s "
                f"({share:.0%}) cannot be served within SLO"
            )
        return Reason.BUDGET_LIMITED, (
            f"{change}: GPU budget exhausted; {unserved:.2f} of {rate:.2f} req/s ({share:.0%}) "
            f"unserved, priority {tier.priority} degraded after higher priorities"
        )
    if live.breached:
        obs = live.observation
        seen = f"p{tier.slo.percentile:g} TTFT {_ms(obs.ttft_s)} / TPOT {_ms(obs.tpot_s)}"
        if obs.attainment_frac is not None:
            seen = f"attainment {obs.attainment_frac:.2%} < {tier.slo.attainment_frac:.2%} ({seen})"
        return Reason.SLO_BREACH, (
            f"{change}: observed {seen} breaks the SLO ({_ms(tier.slo.ttft_s)} / "
            f"{_ms(tier.slo.tpot_s)}) beyond sampling noise; model bias now x{live.bias:.2f}"
        )
    if desired > current:
        return Reason.FORECAST_UP, (
            f"{change}: forecast {rate:.2f} req/s ({live.demand.method}) over the "
            f"{tier.scaling.cold_start_s:.0f}s cold start needs {raw}"
        )
    if desired < current:
        return Reason.SCALE_DOWN, (
            f"{change}: demand {rate:.2f} req/s has needed fewer replicas for the whole "
            f"{tier.scaling.scale_down_stabilization_s:.0f}s window"
        )
    if raw < desired and stable.held_by_window:
        return Reason.STABILIZED, (
            f"holding {desired} replicas: {raw} would do for {rate:.2f} req/s, but not yet for "
            f"the whole {tier.scaling.scale_down_stabilization_s:.0f}s window"
        )
    if spill_out > 1e-6:
        return Reason.SPILLOVER, (
            f"holding {desired} replicas: {spill_out:.2f} of {rate:.2f} req/s served by "
            f"tighter tiers' spare capacity"
        )
    if desired == tier.pool.min_replicas and raw <= tier.pool.min_replicas:
        return Reason.AT_MIN, f"holding minReplicas {desired} for {rate:.2f} req/s"
    return Reason.STEADY, f"holding {desired} replicas for {rate:.2f} req/s within SLO"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}ms"


def _hold(
    tier: Tier,
    observations: Observations,
    prior: PlannerState,
    now_s: float,
    cfg: PlannerConfig,
    other_writer: str | None,
) -> TierDecision:
    """Missing or stale metrics: keep the last plan, never scale on what we cannot see.
    Another writer on the Deployment: plan around its replicas, write nothing."""
    obs = observations.get(tier.key)
    replicas = _held_replicas(tier, observations, prior)
    last = prior.last_decisions.get(tier.key)
    weights = dict(last.weights_by_pool) if last else {tier.key: 1.0}
    if other_writer is not None:
        return TierDecision(
            tier_key=tier.key,
            desired_replicas=replicas,
            weights_by_pool=weights,
            reason=Reason.CONFLICT,
            message=(
                f"{other_writer} sets the replicas of Deployment {tier.pool.deployment} "
                f"({replicas} now): tierscale does not write them until it is gone"
            ),
            gpus=replicas * tier.pool.gpus_per_replica,
            model_correction=prior.correction_by_tier.get(tier.key, (1.0, 1.0)),
        )
    if obs is None or obs.rate_rps is None:
        why = "no request-rate metric"
    elif obs.sampled_at_s > now_s:
        why = f"metrics sampled {obs.sampled_at_s - now_s:.0f}s after the decision time"
    else:
        why = f"metrics {now_s - obs.sampled_at_s:.0f}s old (stale after {cfg.stale_after_s:.0f}s)"
    return TierDecision(
        tier_key=tier.key,
        desired_replicas=replicas,
        weights_by_pool=weights,
        reason=Reason.HOLD_STALE_METRICS,
        message=f"holding {replicas} replicas and the last routing: {why}",
        gpus=replicas * tier.pool.gpus_per_replica,
        model_correction=prior.correction_by_tier.get(tier.key, (1.0, 1.0)),
    )
