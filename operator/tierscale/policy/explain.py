"""Step 8: a reason code and one human sentence per tier, with the numbers that bound.

The sentence walks the pipeline's record (`trace.Trace`) from the tier's need to its
desired replicas, one clause per rule that set or cut them, each ending in the replicas
it left:

    2 -> 6 replicas: forecast 33.00 req/s needs 10 replicas at 3.44 req/s each;
    +4 per decision (maxScaleUpReplicas) allows 6 now

(`tests/policy/test_planner.py`, the IDE tier at 33 req/s of 3000-token prompts).

The reason is the rule that decided the number (the last binding clause); an observed
breach that changed nothing by itself still names the decision when nothing but
spillover or minReplicas bound. With no binding clause the reason is the change:
ForecastUp, ScaleDown or Steady.

Also the decisions of tiers that are not planned: held on stale or missing metrics,
held for another writer of their Deployment, or invalid (a Deployment another tier owns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tierscale.domain.observations import Observations
from tierscale.domain.plans import PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Tier
from tierscale.policy import allocation
from tierscale.policy.advice import EngineAdvice, engine_advice
from tierscale.policy.backlog import queue_overloaded
from tierscale.policy.calibrate import multipliers
from tierscale.policy.capacities import (
    lean_busy_frac,
    planning_percentile,
    planning_slo,
    tails_unattainable,
)
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import LiveTier, held_replicas, served_load_rps
from tierscale.policy.route import MIN_FLOW_RPS, weights
from tierscale.policy.trace import CapUse, Trace
from tierscale_predictor import latency

_SOFT = frozenset({Reason.SPILLOVER, Reason.AT_MIN})
"""Clauses an observed breach outranks as the reason when it is the only other news."""


@dataclass(frozen=True, slots=True)
class _Clause:
    """One step of the explanation: what a rule did, and the replicas it left."""

    reason: Reason | None
    """None for a note that never names the decision."""
    text: str
    """What the rule did, ending with the replicas it left (notes have no number)."""
    binding: bool = True
    """False for a note: a breach the guard did not need to act on, or one that waits for
    replicas still loading."""


@dataclass(frozen=True, slots=True)
class FlowTotals:
    """Per pool key, the sums every tier's decision reads from the plan's flows, added up
    once per plan (`flow_totals`) rather than over every flow for every tier."""

    planned_out_rps: Mapping[str, float]
    """The tier's planned traffic on other pools (`target`)."""
    planned_in_rps: Mapping[str, float]
    """Other tiers' planned traffic on the tier's pool."""
    routed_out_rps: Mapping[str, float]
    """The same two for today's routing (`routing`)."""
    routed_in_rps: Mapping[str, float]
    pool_load: Mapping[str, float]
    """Replica-worths of planned traffic on the pool (each flow over its capacity there)."""


def flow_totals(
    target: allocation.Allocation,
    routing: allocation.Allocation,
    caps: Mapping[str, Mapping[str, float]],
) -> FlowTotals:
    """`FlowTotals` of one plan; each sum adds its flows in the flows' order, as summing
    them tier by tier did."""
    planned_out, planned_in = _spills(target.flow_rps_by_demand_pool)
    routed_out, routed_in = _spills(routing.flow_rps_by_demand_pool)
    load: dict[str, float] = {}
    for (t, p), rps in target.flow_rps_by_demand_pool.items():
        if caps[t].get(p):
            load[p] = load.get(p, 0) + rps / caps[t][p]
    return FlowTotals(planned_out, planned_in, routed_out, routed_in, load)


def explain(
    live: LiveTier,
    trace: Trace,
    target: allocation.Allocation,
    routing: allocation.Allocation,
    caps: Mapping[str, Mapping[str, float]],
    models: Mapping[str, latency.LatencyModel],
    cfg: PlannerConfig,
    batch_limit: tuple[int, int] | None = None,
    totals: FlowTotals | None = None,
) -> TierDecision:
    """The decision of a live tier: its replicas, routing, numbers, reason and message;
    `batch_limit` is (learned, assumed) where the pool's queue showed a batch limit below
    the one its model assumed and it is planned with (`policy/batch_limit.py`); `totals`
    the plan's `flow_totals` (computed here when not given)."""
    tier, key, desired = live.tier, live.tier.key, trace.desired
    flows = flow_totals(target, routing, caps) if totals is None else totals
    unserved = target.unserved_rps_by_demand.get(key, 0.0)
    own_cap = caps[key].get(key, 0.0)
    pool_load = flows.pool_load.get(key, 0)
    ttft_s, tpot_s = _predicted(live, desired, pool_load * own_cap, models)
    planned_out = flows.planned_out_rps.get(key, 0)
    planned_in = flows.planned_in_rps.get(key, 0)
    clauses = [
        *_allocation_clauses(live, trace, (planned_out, planned_in), unserved),
        *_withdrawn_clauses(trace),
        *_guard_clauses(live, trace),
        *_stabilizer_clauses(live, trace, models[key].max_num_seqs, own_cap),
        *_fit_clauses(trace),
    ]
    reason = _decided_by(clauses, live.current_replicas, desired)
    tail_bound = tails_unattainable(models[key], tier, live.shape, cfg)
    idle = _idle_miss(live, models) if tail_bound else ""
    lean = "" if tail_bound else _lean(live, models, cfg)
    advice = engine_advice(models[key], planning_slo(tier, cfg), live.shape, live.bias)
    return TierDecision(
        tier_key=key,
        desired_replicas=desired,
        weights_by_pool=weights(key, routing),
        reason=reason,
        message=_message(live, trace, own_cap, clauses, reason, (idle, lean), advice, batch_limit),
        forecast_rate_rps=live.demand.rate_rps,
        served_rate_rps=max(live.demand.rate_rps - unserved, 0.0),
        unserved_rate_rps=unserved,
        predicted_ttft_s=ttft_s,
        predicted_tpot_s=tpot_s,
        capacity_rps_per_replica=own_cap,
        spill_in_rps=flows.routed_in_rps.get(key, 0),
        spill_out_rps=flows.routed_out_rps.get(key, 0),
        admission_cap_rps=None if tail_bound else _admission_cap_rps(live, desired, own_cap, cfg),
        gpus=desired * tier.pool.gpus_per_replica,
        model_correction=multipliers(models[key]),
        needed_replicas=trace.needed,
        bound_by=tuple(dict.fromkeys(c.reason for c in clauses if c.binding and c.reason)),
        slo_breached=live.slo_breached,
        slo_unproven=live.unproven_miss,
        planned_spill_in_rps=planned_in,
        planned_spill_out_rps=planned_out,
        engine_advice=None if advice is None else advice.text(),
    )


def _admission_cap_rps(
    live: LiveTier, desired: int, own_cap: float, cfg: PlannerConfig
) -> float | None:
    """The rate the pool's Envoy admission cap admits, or None: no cap now.

    The cap is what the Ready replicas serve within the SLO by the model. It binds only
    where the pool shows overload (`PlannerConfig.admission_caps`): the SLO observed
    breached, a queue that already waits longer than the TTFT SLO at that capacity, or
    replicas still loading under more demand than the Ready ones serve. A shortfall only
    the model predicts (even one the plan leaves unserved) is no reason: a cap from a
    pessimistic model turns away requests the pool would have served.

    A pool whose model serves nothing within the SLO (`own_cap` 0: even an idle replica
    misses the SLO's percentile for the observed lengths) gets no cap: a cap of 0 would
    turn away every request, also the many short ones the pool serves within the SLO
    (gen-s7-009: 2,159 of 3,133 requests of a tier with a 95 % target turned away while
    the served ones met the SLO at p50 0.28 s against 1.31 s).
    """
    if own_cap <= 0.0:
        return None
    cap_rps = min(live.ready_replicas, desired) * own_cap
    if cfg.admission_caps == "always" or live.slo_breached:
        return cap_rps
    if queue_overloaded(live, own_cap):
        return cap_rps
    if live.ready_replicas < desired and live.demand.rate_rps - live.demand.headroom_rps > cap_rps:
        return cap_rps
    return None


def _spills(
    flows: Mapping[tuple[str, str], float],
) -> tuple[dict[str, float], dict[str, float]]:
    """Per key, traffic of the tier on other pools (out) and of other tiers on its pool (in)."""
    out: dict[str, float] = {}
    into: dict[str, float] = {}
    for (tier, pool), rps in flows.items():
        if rps > MIN_FLOW_RPS and tier != pool:
            out[tier] = out.get(tier, 0) + rps
            into[pool] = into.get(pool, 0) + rps
    return out, into


def _predicted(
    live: LiveTier,
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


def _lean(live: LiveTier, models: Mapping[str, latency.LatencyModel], cfg: PlannerConfig) -> str:
    """Why the pool's capacity leans to the mean lengths though an idle replica meets the
    tail (`capacities.tail_cliff_frac`): the busy fraction up to which it does; "" where
    the lean does not set the capacity."""
    busy = lean_busy_frac(models[live.tier.key], live.tier, live.shape, cfg)
    if busy is None:
        return ""
    pct = planning_percentile(live.tier)
    return (
        f"lean: a replica holds the p{pct:g} tail only up to {busy * 100:.1f}% busy"
        f" (< {cfg.tail_cliff_busy_frac * 100:.0f}%) with p99 prompts of"
        f" {live.shape.prompt_tokens_tail:,.0f} tokens"
    )


def _idle_miss(live: LiveTier, models: Mapping[str, latency.LatencyModel]) -> str:
    """Why no replica of the pool meets the SLO: what an idle replica is predicted to do.

    Named with the numbers that bind: the planning percentile's TTFT or TPOT of a nearly
    idle replica (the learned bias included) against the SLO, and the p99 prompt that
    sets a TTFT tail."""
    tier, shape = live.tier, live.shape
    pct = planning_percentile(tier)
    idle = latency.predict(models[tier.key], 1e-3, shape, pct)
    misses = []
    if idle.ttft_s * live.bias > tier.slo.ttft_s:
        misses.append(
            f"p{pct:g} TTFT {idle.ttft_s * live.bias * 1000:.0f}ms > {tier.slo.ttft_s * 1000:.0f}ms"
            f" with p99 prompts of {shape.prompt_tokens_tail:,.0f} tokens"
        )
    if idle.tpot_s * live.bias > tier.slo.tpot_s:
        misses.append(
            f"p{pct:g} TPOT {idle.tpot_s * live.bias * 1000:.0f}ms > {tier.slo.tpot_s * 1000:.0f}ms"
        )
    return "idle: " + (" and ".join(misses) or "no load it can carry within the SLO")


# ---------------------------------------------------------------------- one clause per step


def _allocation_clauses(
    live: LiveTier, trace: Trace, spill: tuple[float, float], unserved: float
) -> list[_Clause]:
    """Why the exact allocation differs from the need (or leaves demand unserved)."""
    pool, allocated, need = live.tier.pool, trace.allocated, trace.needed
    planned_out, planned_in = spill
    if unserved > 0.0:
        tail = _shortfall(planned_out, planned_in, unserved, live.demand.rate_rps)
        cap = trace.allocation_cap
        if not trace.allocation_feasible and cap is not None and cap.used_gpus > cap.gpus:
            text = _budget(cap, allocated, tail)
            return [_Clause(Reason.BUDGET_LIMITED, text)]
        if not trace.allocation_feasible:
            text = f"the solver found no allocation, so it keeps {allocated}{tail}"
            return [_Clause(Reason.SOLVER_FAILED, text)]
        if need is None:
            return [_Clause(Reason.SLO_UNATTAINABLE, f"it keeps {allocated}{tail}")]
        if allocated >= pool.max_replicas:
            text = f"maxReplicas allows {allocated}{tail}"
            return [_Clause(Reason.AT_MAX, text)]
        if planned_in > 0.0 and (cap is None or cap.gpus - cap.used_gpus >= pool.gpus_per_replica):
            # Not the budget: a lender is never grown for borrowers (`target.lender_spec`),
            # and a higher priority's spill-in came first.
            text = f"as a lender its pool is kept to its own need: {allocated}{tail}"
            return [_Clause(Reason.SPILLOVER, text)]
        text = _budget(cap, allocated, tail)
        return [_Clause(Reason.BUDGET_LIMITED, text)]
    if planned_out > 0.0 and (need is None or allocated < need):
        text = (
            f"the plan puts {planned_out:.2f} req/s on tighter pools' spare capacity: {allocated}"
        )
        return [_Clause(Reason.SPILLOVER, text)]
    if need is not None and allocated > need and allocated == pool.min_replicas:
        return [_Clause(Reason.AT_MIN, f"minReplicas holds {allocated}")]
    return []


def _withdrawn_clauses(trace: Trace) -> list[_Clause]:
    """Spillover the previous decision routed onto a pool that lends nothing now."""
    return [
        _Clause(None, f"no spillover onto {pool} any more: {why}", binding=False)
        for pool, why in trace.spill_withdrawn
    ]


def _guard_clauses(live: LiveTier, trace: Trace) -> list[_Clause]:
    """The breach guard: one replica more than the pool has, within maxReplicas."""
    obs, current = live.observation, live.current_replicas
    if live.unproven_miss:
        return [_Clause(None, _unproven(live), binding=False)]
    if live.slo_breached and not live.breached:
        loading = current - live.ready_replicas
        text = f"the observed SLO miss waits for the {_replicas(loading)} still loading"
        return [_Clause(None, text, binding=False)]
    if not (live.breached and obs.rate_rps):
        return []
    seen = _breach(live)
    wish = trace.guard_wish
    if wish > trace.allocated:
        text = f"{seen}: one more than the {current} it has, {wish}"
        clauses = [_Clause(Reason.SLO_BREACH, text)]
    else:
        clauses = [_Clause(Reason.SLO_BREACH, seen, binding=False)]
    if trace.guarded < wish:
        clauses.append(_Clause(Reason.AT_MAX, f"maxReplicas allows {trace.guarded}"))
    return clauses


def _stabilizer_clauses(
    live: LiveTier, trace: Trace, max_num_seqs: int, own_cap_rps: float
) -> list[_Clause]:
    """The stabiliser's rule, if it moved the number, then min/maxReplicas around it."""
    result, scaling, obs = trace.stabilized, live.tier.scaling, live.observation
    n, window_s = result.replicas, scaling.scale_down_stabilization_s
    clauses: list[_Clause] = []
    if result.rule == "step_up":
        text = f"+{max(scaling.max_scale_up_replicas, 1)} per decision (maxScaleUpReplicas) "
        clauses.append(_Clause(Reason.SCALE_UP_LIMITED, f"{text}allows {n} now"))
    elif result.rule == "step_down":
        text = f"-{max(scaling.max_scale_down_replicas, 1)} per decision (maxScaleDownReplicas) "
        clauses.append(_Clause(Reason.SCALE_DOWN_LIMITED, f"{text}allows {n}"))
    elif result.rule == "window" and result.window_covered:
        text = f"the {window_s:.0f}s scale-down window holds {n}"
        clauses.append(_Clause(Reason.STABILIZED, text))
    elif result.rule == "window":
        text = f"until it has seen a whole {window_s:.0f}s scale-down window, it holds {n}"
        clauses.append(_Clause(Reason.STABILIZED, text))
    elif result.rule == "load":
        load_rps = served_load_rps(obs)
        text = (
            f"the {load_rps:.2f} req/s the pool serves now "
            f"({own_cap_rps:.2f} req/s per replica) keeps {n}"
        )
        clauses.append(_Clause(Reason.STABILIZED, text))
    elif result.rule == "floor":
        text = (
            f"requests in flight ({obs.running_requests or 0.0:.0f} running, "
            f"{obs.waiting_requests or 0.0:.0f} waiting, {max_num_seqs} per replica) need {n}"
        )
        clauses.append(_Clause(Reason.STABILIZED, text))
    if trace.stable < n:
        clauses.append(_Clause(Reason.AT_MAX, f"maxReplicas allows {trace.stable}"))
    elif trace.stable > n:
        clauses.append(_Clause(Reason.AT_MIN, f"minReplicas holds {trace.stable}"))
    return clauses


def _fit_clauses(trace: Trace) -> list[_Clause]:
    """Replicas above the allocation trimmed back into the GPU budget."""
    if trace.desired >= trace.stable:
        return []
    tail = ""
    if len(trace.yielded_to) == 1:
        tail = f" while {trace.yielded_to[0]}, breaching its SLO, holds replicas"
    elif trace.yielded_to:
        tail = f" while {', '.join(trace.yielded_to)}, breaching their SLOs, hold replicas"
    text = _budget(trace.fit_cap, trace.desired, tail)
    return [_Clause(Reason.BUDGET_LIMITED, text)]


# -------------------------------------------------------------------------- the sentence


def _decided_by(clauses: list[_Clause], current: int, desired: int) -> Reason:
    """The last binding clause decided; else the change itself."""
    reason: Reason | None = None
    for clause in clauses:
        if clause.binding and clause.reason is not None:
            reason = clause.reason
        elif clause.reason is Reason.SLO_BREACH and (reason is None or reason in _SOFT):
            reason = Reason.SLO_BREACH
    if reason is not None:
        return reason
    if desired > current:
        return Reason.FORECAST_UP
    if desired < current:
        return Reason.SCALE_DOWN
    return Reason.STEADY


FLOOR_SHOWN_ABOVE = 1.005
"""A bias floor (`breach.floor_after`) that binds is named in the need once it shows."""


def _forecast_text(live: LiveTier) -> str:
    """'forecast R req/s (how)', with the headroom and the backlog's drain it adds."""
    demand = live.demand
    forecast = f"forecast {demand.forecast_rps:.2f} req/s"
    if demand.method == "step":
        forecast += (
            f" (a step: the newest {demand.step_s:.0f}s of the"
            f" {live.observation.window_s:.0f}s rate window)"
        )
    elif demand.method != "latest":
        forecast += f" ({demand.method} over the {live.tier.scaling.cold_start_s:.0f}s cold start)"
    if demand.headroom_rps > 0.0:
        forecast += (
            f" + {demand.headroom_rps:.2f} req/s of headroom"
            f" (x{live.tier.scaling.headroom:g}, spec.scaling.headroom)"
        )
    if demand.backlog_rps > 0.0:
        waiting = live.observation.waiting_requests or 0.0
        forecast += (
            f" + {demand.backlog_rps:.2f} req/s to drain the {waiting:.0f} waiting"
            f" within {demand.backlog_drain_s:.0f}s"
        )
    return forecast


def _message(
    live: LiveTier,
    trace: Trace,
    own_cap: float,
    clauses: list[_Clause],
    reason: Reason,
    tails: tuple[str, str],
    advice: EngineAdvice | None = None,
    batch_limit: tuple[int, int] | None = None,
) -> str:
    """'<change>: <need>; <clause>; ...': the need, then every rule that moved it, then
    engine arguments that would serve more per replica (`advice`), if any. `tails` is
    (what an idle replica misses where none meets the tail, why the capacity leans to
    the mean lengths where one barely does): at most one of them is said."""
    idle_miss, lean = tails
    current, desired = live.current_replicas, trace.desired
    change = f"{current} -> {_replicas(desired)}" if desired != current else "holding "
    if desired == current:
        change += _replicas(desired)
    forecast = _forecast_text(live)
    unattainable = f"no replica of this pool meets the SLO at these request lengths ({idle_miss})"
    if trace.needed is None:
        head = f"{forecast}: {unattainable}"
    else:
        head = f"{forecast} needs {_replicas(trace.needed)} at {own_cap:.2f} req/s each"
        if batch_limit is not None:
            head += (
                f" (at most {batch_limit[0]} requests running per replica, as its queue"
                f" showed; the model assumed {batch_limit[1]})"
            )
        if live.bias_floor > max(live.decaying_bias, FLOOR_SHOWN_ABOVE):
            head += (
                f" (x{live.bias_floor:.2f} below the model: a breach at a load it predicted safe)"
            )
    if trace.needed is not None and lean:
        head += (
            ", sized partly for the mean lengths: replicas buy little for the tail lengths"
            f" ({lean})"
        )
    elif trace.needed is not None and idle_miss:
        head += (
            ", sized for the mean lengths: no replica meets the SLO at the tail lengths"
            f" ({idle_miss}), so no admission cap"
        )
    parts = [head, *(c.text for c in clauses)]
    if reason is Reason.SCALE_DOWN:
        window_s = live.tier.scaling.scale_down_stabilization_s
        parts.append(f"every recommendation over the {window_s:.0f}s scale-down window agrees")
    if advice is not None:
        parts.append(f"engine arguments: {advice.text()}")
    return f"{change}: " + "; ".join(parts)


def _budget(cap: CapUse | None, replicas: int, tail: str) -> str:
    """The GPU cap that bound, its GPUs and what was planned inside it."""
    if cap is None:  # a trim or shortfall always has a cap; kept total for the type checker
        return f"the GPU budget allows {replicas}{tail}"
    scope = f"the {cap.gpus}-GPU budget" + (f" of {cap.model}" if cap.model else "")
    if cap.used_gpus > cap.gpus:
        floor = f"the {cap.used_gpus} GPUs minReplicas and held pools take"
        return f"{scope} is below {floor}: {replicas}{tail}"
    return f"{scope} ({cap.used_gpus} GPUs planned) allows {replicas}{tail}"


SHOWN_RPS = 0.005
"""Planned spill below this would read "0.00 req/s": the message leaves it out (the
decision's `planned_spill_*_rps` fields keep the exact numbers)."""


def _shortfall(planned_out: float, planned_in: float, unserved: float, rate_rps: float) -> str:
    """What becomes of the demand the replicas allowed do not serve on their own."""
    text = f", {planned_out:.2f} req/s onto tighter pools" if planned_out >= SHOWN_RPS else ""
    if planned_in >= SHOWN_RPS:
        text += f", {planned_in:.2f} req/s of other tiers on its pool"
    share = unserved / rate_rps if rate_rps > 0.0 else 1.0
    return f"{text}, leaving {unserved:.2f} of {rate_rps:.2f} req/s ({share:.0%}) unserved"


def _breach(live: LiveTier) -> str:
    """What was observed, against the SLO, and the bias learned from it."""
    tier, obs = live.tier, live.observation
    seen = f"p{tier.slo.percentile:g} TTFT {_ms(obs.ttft_s)} / TPOT {_ms(obs.tpot_s)}"
    if obs.attainment_frac is not None:
        seen = f"attainment {obs.attainment_frac:.2%} < {tier.slo.attainment_frac:.2%} ({seen})"
    learned = f"model bias now x{live.bias:.2f}"
    if live.learning_paused_s is not None:
        learned = (
            f"model bias kept at x{live.bias:.2f} (a replica became Ready "
            f"{live.learning_paused_s:.0f} s ago: its first minute is not learned from)"
        )
    elif live.backlog_explains is not None:
        ago_s, waiting = live.backlog_explains
        learned = (
            f"model bias kept at x{live.bias:.2f} (the {waiting:.0f} waiting {ago_s:.0f} s "
            "ago explain it: a backlog is not learned from)"
        )
    elif live.unsized_s is not None:
        learned = (
            f"model bias kept at x{live.bias:.2f} (the window began "
            f"{live.unsized_s:.0f} s before tierscale first sized this pool: a size "
            "it had not chosen is not learned from)"
        )
    elif live.borrowed_frac is not None:
        learned = (
            f"model bias kept at x{live.bias:.2f} ({live.borrowed_frac:.0%} of the requests "
            "the pool finished were other tiers': a lender's breach is not learned from)"
        )
    return (
        f"observed {seen} breaks the SLO ({_ms(tier.slo.ttft_s)} / {_ms(tier.slo.tpot_s)}) "
        f"beyond sampling noise, {learned}"
    )


def _unproven(live: LiveTier) -> str:
    """A miss only the linear estimate inside vLLM's buckets shows (`breach.unproven`)."""
    tier, obs = live.tier, live.observation
    pct = f"p{tier.slo.percentile:g}"
    spans = [
        f"{pct} {name} {_ms(bucket[0])}-{_ms(bucket[1])} against {_ms(bound_s)}"
        for name, bucket, bound_s in (
            ("TTFT", obs.ttft_bucket_s, tier.slo.ttft_s),
            ("TPOT", obs.tpot_bucket_s, tier.slo.tpot_s),
        )
        if bucket is not None and bucket[1] > bound_s
    ]
    where = f" ({', '.join(spans)})" if spans else ""
    return (
        f"observed attainment {obs.attainment_frac or 0.0:.2%} < {tier.slo.attainment_frac:.2%}"
        f" read linearly inside vLLM's buckets, up to {obs.attainment_most_frac or 0.0:.2%}"
        f" by them{where}, as the model predicted:"
        " no SLO miss proven,"
        f" model bias x{live.bias:.2f}"
    )


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


def invalid_spec(tier: Tier, owner: Tier, replicas: int) -> TierDecision:
    """A tier naming a Deployment another tier owns: nothing is planned for it."""
    return TierDecision(
        tier_key=tier.key,
        desired_replicas=replicas,
        weights_by_pool={},
        reason=Reason.INVALID_SPEC,
        bound_by=(Reason.INVALID_SPEC,),
        message=(
            f"Deployment {tier.namespace}/{tier.pool.deployment} is already the pool of "
            f"SLOTier {owner.key}; {tier.key} is not planned until it names a Deployment "
            "of its own"
        ),
    )


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}ms"


def hold(
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
    replicas = held_replicas(tier, observations, prior)
    last = prior.last_decisions.get(tier.key)
    weights = dict(last.weights_by_pool) if last else {tier.key: 1.0}
    if other_writer is not None:
        return TierDecision(
            tier_key=tier.key,
            desired_replicas=replicas,
            weights_by_pool=weights,
            reason=Reason.CONFLICT,
            bound_by=(Reason.CONFLICT,),
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
        bound_by=(Reason.HOLD_STALE_METRICS,),
        message=f"holding {replicas} replicas and the last routing: {why}",
        gpus=replicas * tier.pool.gpus_per_replica,
        model_correction=prior.correction_by_tier.get(tier.key, (1.0, 1.0)),
    )
