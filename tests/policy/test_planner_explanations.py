"""Every decision's reason and message agree with its numbers, on random plans.

The message is parsed back clause by clause: the need it quotes is the decision's
`needed_replicas` at its `capacity_rps_per_replica`, every clause names the number its
rule left (maxReplicas, the GPU budget and what was planned in it, the step limits, the
window, the in-flight floor, the breach guard) and those numbers are checked against the
tier's spec, the budget and the other decisions of the plan; the last number is the
desired replicas, the reason is the rule that decided it, and `bound_by` lists every
binding rule. Spillover the decision reports is what its routing weights send.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import Plan, PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import GpuBudget, Pool, Scaling, Slo, Tier
from tierscale.policy import planner
from tierscale.policy.breach import decayed_floor
from tierscale.policy.config import PlannerConfig
from tierscale.policy.observe import first_decision
from tierscale_predictor import latency

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
OTHER_MODEL = "other/model"
NOT_PLANNED = {Reason.HOLD_STALE_METRICS, Reason.CONFLICT, Reason.INVALID_SPEC}

_HEAD = re.compile(
    r"forecast (?P<rate>\d+\.\d\d) req/s"
    r"(?: \((?P<method>\w+) over the (?P<cold>\d+)s cold start\)"
    r"| \(a step: the newest (?P<step>\d+)s of the (?P<window>\d+)s rate window\))?"
    r"(?: \+ (?P<backlog>\d+\.\d\d) req/s to drain the (?P<waiting>\d+) waiting"
    r" within (?P<drain>\d+)s)?"
    r"(?: needs (?P<need>\d+) replicas? at (?P<cap>\d+\.\d\d) req/s each"
    r"(?: \(x(?P<floor>\d+\.\d\d) below the model: a breach at a load it predicted safe\))?"
    r"(?:, sized for the mean lengths: no replica meets the SLO at the tail lengths"
    r" \(idle: [^)]*\), so no admission cap"
    r"|, sized partly for the mean lengths: replicas buy little for the tail lengths"
    r" \(lean: a replica holds the p[\d.]+ tail only up to [\d.]+% busy \(< \d+%\)"
    r" with p99 prompts of [\d,]+ tokens\))?"
    r"|: no replica of this pool meets the SLO at these request lengths"
    r" \(idle: p[\d.]+ (?:TTFT|TPOT) \d+ms > \d+ms[^)]*\))"
)
_TAIL = re.compile(
    r"(?:, (?P<out>\d+\.\d\d) req/s onto tighter pools)?"
    r"(?:, (?P<into>\d+\.\d\d) req/s of other tiers on its pool)?"
    r", leaving (?P<u>\d+\.\d\d) of (?P<r>\d+\.\d\d) req/s \((?P<pct>\d+)%\) unserved"
)
_BREACH = (
    r"observed (?P<seen>.+) breaks the SLO \((?P<slo>[^)]*)\) beyond sampling noise, "
    r"model bias (?:now|(?P<kept>kept at)) x(?P<bias>\d+\.\d\d)"
    r"(?: \(the (?P<queued>\d+) waiting (?P<ago>\d+) s ago explain it:"
    r" a backlog is not learned from\))?"
    r"(?: \(the window began (?P<unsized>\d+) s before tierscale first sized this pool:"
    r" a size it had not chosen is not learned from\))?"
    r"(?: \((?P<borrowed>\d+)% of the requests the pool finished were other tiers':"
    r" a lender's breach is not learned from\))?"
)
_CLAUSES: tuple[tuple[str, Reason | None, re.Pattern[str]], ...] = tuple(
    (kind, reason, re.compile(pattern))
    for kind, reason, pattern in (
        (
            "budget",
            Reason.BUDGET_LIMITED,
            r"the (?P<gpus>\d+)-GPU budget(?: of (?P<model>\S+))? \((?P<used>\d+) GPUs planned\) "
            r"allows (?P<n>\d+)(?: while (?P<held>.+), breaching (?:its SLO|their SLOs),"
            r" holds? replicas)?(?P<tail>.*)",
        ),
        (
            "budget_below_minimum",
            Reason.BUDGET_LIMITED,
            r"the (?P<gpus>\d+)-GPU budget(?: of (?P<model>\S+))? is below the (?P<used>\d+) "
            r"GPUs minReplicas and held pools take: (?P<n>\d+)"
            r"(?: while (?P<held>.+), breaching (?:its SLO|their SLOs), holds? replicas)?"
            r"(?P<tail>.*)",
        ),
        ("max", Reason.AT_MAX, r"maxReplicas allows (?P<n>\d+)(?P<tail>.*)"),
        ("unattainable", Reason.SLO_UNATTAINABLE, r"it keeps (?P<n>\d+)(?P<tail>.*)"),
        (
            "solver_failed",
            Reason.SOLVER_FAILED,
            r"the solver found no allocation, so it keeps (?P<n>\d+)(?P<tail>.*)",
        ),
        (
            "lender",
            Reason.SPILLOVER,
            r"as a lender its pool is kept to its own need: (?P<n>\d+)(?P<tail>.*)",
        ),
        (
            "spill",
            Reason.SPILLOVER,
            r"the plan puts (?P<rps>\d+\.\d\d) req/s on tighter pools' spare capacity: (?P<n>\d+)",
        ),
        ("min", Reason.AT_MIN, r"minReplicas holds (?P<n>\d+)"),
        (
            "breach_up",
            Reason.SLO_BREACH,
            _BREACH + r": one more than the (?P<current>\d+) it has, (?P<n>\d+)",
        ),
        ("breach", None, _BREACH),
        (
            "unproven",
            None,
            r"observed attainment (?P<att>\d+\.\d\d)% < (?P<target>\d+\.\d\d)% read linearly"
            r" inside vLLM's buckets, up to (?P<most>\d+\.\d\d)% by them(?: \((?P<spans>[^)]*)\))?,"
            r" as the model predicted: no SLO miss proven, model bias x(?P<bias>\d+\.\d\d)",
        ),
        (
            "loading",
            None,
            r"the observed SLO miss waits for the (?P<loading>\d+) replicas? still loading",
        ),
        (
            "step_up",
            Reason.SCALE_UP_LIMITED,
            r"\+(?P<k>\d+) per decision \(maxScaleUpReplicas\) allows (?P<n>\d+) now",
        ),
        (
            "step_down",
            Reason.SCALE_DOWN_LIMITED,
            r"-(?P<k>\d+) per decision \(maxScaleDownReplicas\) allows (?P<n>\d+)",
        ),
        ("window", Reason.STABILIZED, r"the (?P<w>\d+)s scale-down window holds (?P<n>\d+)"),
        (
            "engine",
            None,
            r"engine arguments: with (?P<args>(?:--[a-z-]+ \d+ ?)+) one replica would serve"
            r" (?P<advised>\d+\.\d\d) req/s within the SLO, against (?P<now>\d+\.\d\d) with"
            r" (?P<old>(?:--[a-z-]+ \d+ ?)+) \((?P<bound>TPOT|the decoding batch) binds\)",
        ),
        (
            "fresh_window",
            Reason.STABILIZED,
            r"until it has seen a whole (?P<w>\d+)s scale-down window, it holds (?P<n>\d+)",
        ),
        (
            "load",
            Reason.STABILIZED,
            r"the (?P<load>[\d.]+) req/s the pool serves now "
            r"\((?P<cap>[\d.]+) req/s per replica\) keeps (?P<n>\d+)",
        ),
        (
            "inflight",
            Reason.STABILIZED,
            r"requests in flight \((?P<running>\d+) running, (?P<waiting>\d+) waiting, "
            r"(?P<per>\d+) per replica\) need (?P<n>\d+)",
        ),
        ("down_note", None, r"every recommendation over the (?P<w>\d+)s scale-down window agrees"),
        (
            "withdrawn",
            None,
            r"no spillover onto (?P<pool>\S+) any more: (?:(?P<breached>its SLO is observed "
            r"breached)|its model bias x(?P<bias>[\d.]+) > x1\.05 after a recent breach"
            r"|(?P<loading>\d+) of its replicas still loading)",
        ),
    )
)


# ------------------------------------------------------------------------------ the checker


@dataclass(frozen=True)
class Inputs:
    """What one `plan` call read, for checking what it returned."""

    tiers: Sequence[Tier]
    observations: Observations
    budget: GpuBudget | None
    prior: PlannerState
    max_num_seqs_by_tier: Mapping[str, int]


def check_plan(result: Plan, inputs: Inputs) -> None:
    """Every decision's reason, message and numbers agree; raises AssertionError if not."""
    by_key = {t.key: t for t in inputs.tiers}
    for key, decision in result.decisions.items():
        tier = by_key[key]
        if decision.reason in NOT_PLANNED:
            _check_not_planned(decision)
        else:
            _check_planned(decision, tier, result, inputs)
    _check_spill_is_routed(result, inputs.observations)
    assert result.budget_limited == any(
        Reason.BUDGET_LIMITED in d.bound_by for d in result.decisions.values()
    )


def _check_not_planned(d: TierDecision) -> None:
    assert d.bound_by == (d.reason,)
    assert d.needed_replicas is None and d.slo_breached is None
    if d.reason is Reason.HOLD_STALE_METRICS:
        assert d.message.startswith(f"holding {d.desired_replicas} replicas")
    if d.reason is Reason.CONFLICT:
        assert f"({d.desired_replicas} now)" in d.message


@dataclass
class _Walk:
    """The clause chain as parsed: the replicas after each clause, and what bound them."""

    decision: TierDecision
    tier: Tier
    current: int
    ready: int
    observation: TierObservation
    result: Plan
    inputs: Inputs
    value: int | None
    """Replicas after the clauses read so far (the need before the first)."""
    reason: Reason | None = None
    """The reason the clauses read so far decide."""
    binding: list[Reason] = field(default_factory=list)


def _check_planned(d: TierDecision, tier: Tier, result: Plan, inputs: Inputs) -> None:
    obs = inputs.observations.get(tier.key)
    assert obs is not None
    current = _current(tier, obs, inputs.prior)
    ready = min(obs.ready_replicas if obs.ready_replicas is not None else current, current)
    change, _, rest = d.message.partition(": ")
    _check_change(change, current, d.desired_replicas)
    head, *clauses = rest.split("; ")
    _check_head(head, d)
    walk = _Walk(d, tier, current, ready, obs, result, inputs, d.needed_replicas)
    _check_floor(head, walk)
    for text in clauses:
        _check_clause(walk, text)
    assert walk.value == d.desired_replicas, (walk.value, d.message)
    assert d.slo_unproven == ("no SLO miss proven" in d.message), d.message
    expected = walk.reason or _by_change(current, d.desired_replicas)
    _event(f"reason {d.reason.value}")
    assert d.reason is expected, (d.reason, expected, d.message)
    assert d.bound_by == tuple(dict.fromkeys(walk.binding)), (d.bound_by, d.message)
    _check_reason_numbers(d, tier, current)


def _current(tier: Tier, obs: TierObservation, prior: PlannerState) -> int:
    if obs.current_replicas is not None:
        return obs.current_replicas
    last = prior.last_decisions.get(tier.key)
    return last.desired_replicas if last else tier.pool.min_replicas


def _check_change(change: str, current: int, desired: int) -> None:
    moved = re.fullmatch(r"(\d+) -> (\d+) replicas?", change)
    if moved is not None:
        assert (int(moved[1]), int(moved[2])) == (current, desired) and current != desired
        return
    held = re.fullmatch(r"holding (\d+) replicas?", change)
    assert held is not None, change
    assert int(held[1]) == desired == current


def _check_head(head: str, d: TierDecision) -> None:
    match = _HEAD.fullmatch(head)
    assert match is not None, head
    backlog_rps = float(match["backlog"] or 0.0)
    assert math.isclose(
        float(match["rate"]) + backlog_rps, d.forecast_rate_rps, rel_tol=1e-3, abs_tol=0.011
    )
    if match["backlog"] is not None:
        drain_s = float(match["drain"])
        assert abs(backlog_rps - float(match["waiting"]) / drain_s) <= 0.5 / drain_s + 0.006
    if match["need"] is None:
        assert d.needed_replicas is None and d.capacity_rps_per_replica == 0.0
        return
    assert int(match["need"]) == d.needed_replicas
    assert _same(match["cap"], d.capacity_rps_per_replica)
    if d.forecast_rate_rps < 1e-6:
        assert d.needed_replicas == 0
    else:
        assert d.needed_replicas == math.ceil(
            d.forecast_rate_rps / d.capacity_rps_per_replica - 1e-9
        )


def _check_floor(head: str, walk: _Walk) -> None:
    """The need names the bias floor exactly when the floor, not the decaying bias, set
    the capacity (and shows at two decimals)."""
    match = _HEAD.fullmatch(head)
    assert match is not None
    decaying = walk.result.state.bias_by_tier[walk.tier.key]
    in_effect = _bias_in_effect(walk)
    binds = in_effect > max(decaying, 1.005)
    if match["floor"] is None:
        assert not binds or match["need"] is None, (head, decaying, in_effect)
        return
    _event("need names the bias floor")
    assert binds, (head, decaying, in_effect)
    assert _same(match["floor"], in_effect)


def _check_clause(walk: _Walk, text: str) -> None:
    for kind, reason, pattern in _CLAUSES:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        _event(f"clause {kind}")
        groups = {k: v for k, v in match.groupdict().items() if v is not None}
        before = walk.value
        n = int(groups["n"]) if "n" in groups else None
        _CHECKS[kind](walk, groups, before, n)
        if reason is None:
            soft = walk.reason is None or walk.reason in {Reason.SPILLOVER, Reason.AT_MIN}
            if kind == "breach" and soft:
                walk.reason = Reason.SLO_BREACH
            return
        walk.reason = reason
        walk.binding.append(reason)
        walk.value = n
        return
    raise AssertionError(f"unknown clause {text!r} in {walk.decision.message!r}")


def _event(name: str) -> None:
    """Count clause kinds and reasons (`--hypothesis-show-statistics`), inside a test only."""
    if currently_in_test_context():
        event(name)


def _by_change(current: int, desired: int) -> Reason:
    if desired > current:
        return Reason.FORECAST_UP
    if desired < current:
        return Reason.SCALE_DOWN
    return Reason.STEADY


def _check_reason_numbers(d: TierDecision, tier: Tier, current: int) -> None:
    """The brief's implications, on the decision's own fields."""
    pool, scaling = tier.pool, tier.scaling
    if d.reason is Reason.AT_MAX:
        assert d.desired_replicas == pool.max_replicas
    if d.reason is Reason.SCALE_UP_LIMITED:
        assert d.needed_replicas is not None
        step = max(scaling.max_scale_up_replicas, 1)
        assert d.desired_replicas == current + step < d.needed_replicas
    if d.reason is Reason.SCALE_DOWN_LIMITED:
        assert d.desired_replicas == current - max(scaling.max_scale_down_replicas, 1)
    if d.reason in {Reason.FORECAST_UP, Reason.SCALE_DOWN, Reason.STEADY}:
        assert d.desired_replicas == d.needed_replicas
        assert d.unserved_rate_rps == 0.0
    if d.reason is Reason.STABILIZED:
        # a need exists unless no replica meets the SLO at all (then none is computed)
        assert d.needed_replicas is not None or Reason.SLO_UNATTAINABLE in d.bound_by
        assert d.desired_replicas <= current or "requests in flight" in d.message
    if d.reason is Reason.SLO_BREACH:
        assert d.slo_breached is True
    if d.reason is Reason.SPILLOVER:
        assert d.planned_spill_out_rps > 0.0 or d.planned_spill_in_rps > 0.0
    if d.reason is Reason.AT_MIN:
        assert d.desired_replicas == pool.min_replicas
    if d.unserved_rate_rps > 0.0:
        shortfall = {
            Reason.AT_MAX,
            Reason.BUDGET_LIMITED,
            Reason.SLO_UNATTAINABLE,
            Reason.SPILLOVER,
            Reason.SOLVER_FAILED,
        }
        assert shortfall & set(d.bound_by), d.message


# -------------------------------------------------------------------------- clause checks


def _budget(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    tier, d = walk.tier, walk.decision
    gpus, used = int(g["gpus"]), int(g["used"])
    pools = _cap_pools(walk.inputs, gpus, g.get("model"))
    assert tier.key in pools, (g, walk.inputs.budget)
    assert used <= gpus, (used, gpus, d.message)
    if g["tail"]:  # the allocation left demand unserved: no room for one more replica
        assert gpus < used + tier.pool.gpus_per_replica, (used, gpus, d.message)
        assert n is not None and tier.pool.min_replicas <= n < tier.pool.max_replicas
        _check_tail(walk, g["tail"])
        return
    _check_held(walk, g, pools)
    # Trimmed after the stabiliser: the GPUs quoted are the plan's own, inside the cap.
    # (Trimming goes lowest priority first by whole replicas, so with pools of different
    # GPUs per replica, or two caps, the cap may keep a GPU or two of room.)
    planned = sum(
        e.gpus
        for k, e in walk.result.decisions.items()
        if k in pools and e.reason is not Reason.INVALID_SPEC
    )
    assert planned == used, (planned, used, d.message)
    assert before is not None and n is not None and n < before


def _check_held(walk: _Walk, g: dict[str, str], pools: Collection[str]) -> None:
    """A scale-up cut names the tiers it gave way to: of at least its priority, in the
    cap, observed breaching, holding replicas."""
    if not g.get("held"):
        return
    by_name = {t.name: t for t in walk.inputs.tiers}
    for name in g["held"].split(", "):
        holder = by_name[name]
        assert holder.priority >= walk.tier.priority, (holder, walk.decision.message)
        assert walk.result.decisions[holder.key].slo_breached, walk.decision.message
        assert holder.key in pools, (g, walk.decision.message)


def _budget_below_minimum(
    walk: _Walk, g: dict[str, str], before: int | None, n: int | None
) -> None:
    assert int(g["used"]) > int(g["gpus"])
    assert walk.tier.key in _cap_pools(walk.inputs, int(g["gpus"]), g.get("model"))
    _check_held(walk, g, _cap_pools(walk.inputs, int(g["gpus"]), g.get("model")))
    if g["tail"]:  # the allocation: even the minimum replicas break the cap
        _check_tail(walk, g["tail"])
    else:  # trimmed after the stabiliser back to the minimum, still over
        assert before is not None and n is not None and n < before


def _max(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    assert n == walk.tier.pool.max_replicas
    if g["tail"]:
        _check_tail(walk, g["tail"])
    else:
        assert before is not None and n < before, walk.decision.message


def _unattainable(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    assert walk.decision.needed_replicas is None
    _check_tail(walk, g["tail"])


def _solver_failed(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    """HiGHS gave up on a feasible problem: a decision bug to fix, told as it is."""
    assert walk.result.solver_status == "infeasible"
    _check_tail(walk, g["tail"])


def _lender(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    """A lender is bounded to its own need; other tiers' traffic on it left its own demand
    unserved with GPUs to spare (a decision to revisit, reported; the message says it)."""
    d = walk.decision
    assert d.needed_replicas is not None and d.planned_spill_in_rps > 0.0
    assert n == max(d.needed_replicas, walk.tier.pool.min_replicas)
    _check_tail(walk, g["tail"])


def _spill(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    d = walk.decision
    assert d.planned_spill_out_rps > 0.0 and _same(g["rps"], d.planned_spill_out_rps)
    assert d.unserved_rate_rps == 0.0
    assert before is None or (n is not None and n < before)


def _min(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    assert n == walk.tier.pool.min_replicas
    assert before is None or n > before


def _breach_up(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    _breach(walk, g, before, n)
    assert int(g["current"]) == walk.current and n == walk.current + 1
    assert before is None or n > before
    assert walk.ready >= walk.current


def _bias_in_effect(walk: _Walk) -> float:
    """The bias the plan divided capacities by: the decaying one, or the floor earlier
    breaches proved (decayed to this decision), the larger (`observe.observe`)."""
    key, prior = walk.tier.key, walk.inputs.prior
    elapsed_s = walk.result.decided_at_s - (prior.last_plan_at_s or walk.result.decided_at_s)
    floor = decayed_floor(prior.bias_floor_by_tier.get(key, 1.0), elapsed_s, PlannerConfig())
    return max(walk.result.state.bias_by_tier[key], floor)


def _breach(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    d, obs, slo = walk.decision, walk.observation, walk.tier.slo
    assert d.slo_breached is True
    assert _same(g["bias"], _bias_in_effect(walk))
    assert ("kept" in g) == ("queued" in g or "unsized" in g or "borrowed" in g)
    if "queued" in g:
        _backlog_explains(walk, g)
    if "unsized" in g:
        _unsized(walk, g)
    if "borrowed" in g:
        _borrowed(walk, g)
    # A tier's first decision never learns from a breach: its whole window is a size
    # the planner had not chosen.
    assert "unsized" in g or not first_decision(walk.tier.key, walk.inputs.prior)
    assert f"TTFT {_ms(obs.ttft_s)} / TPOT {_ms(obs.tpot_s)}" in g["seen"]
    assert g["slo"] == f"{_ms(slo.ttft_s)} / {_ms(slo.tpot_s)}"
    if obs.attainment_frac is not None:
        assert g["seen"].startswith(f"attainment {obs.attainment_frac:.2%} < ")


def _backlog_explains(walk: _Walk, g: dict[str, str]) -> None:
    """A breach a carried backlog explains: the queue quoted is the one the state
    remembered, and the bias neither grew nor decayed."""
    key, prior = walk.tier.key, walk.inputs.prior
    queued_at_s, waiting = prior.backlog_by_tier[key]
    assert int(g["queued"]) == round(waiting)
    assert int(g["ago"]) == round(walk.result.decided_at_s - queued_at_s)
    assert walk.result.state.bias_by_tier[key] == prior.bias_by_tier.get(key, 1.0)


def _unsized(walk: _Walk, g: dict[str, str]) -> None:
    """A breach whose window began before the planner first sized the pool: the seconds
    quoted are those between the window's start and that decision (now, at the tier's
    first), and the bias neither grew nor decayed."""
    _event("breach before the pool was sized")
    key, prior, obs = walk.tier.key, walk.inputs.prior, walk.observation
    first = first_decision(key, prior)
    assert first or key in prior.sized_up_at_by_tier
    sized_up_at_s = prior.sized_up_at_by_tier.get(key, walk.result.decided_at_s)
    start_s = walk.result.decided_at_s - obs.window_s
    assert int(g["unsized"]) == round(min(sized_up_at_s - start_s, obs.window_s))
    assert walk.result.state.bias_by_tier[key] == prior.bias_by_tier.get(key, 1.0)
    raised = walk.decision.desired_replicas > walk.current
    assert (key in walk.result.state.sized_up_at_by_tier) == (raised or not first)


def _borrowed(walk: _Walk, g: dict[str, str]) -> None:
    """A lender's breach: the share quoted is of the requests the pool finished, at least
    what the last decision routed onto it, and the bias neither grew nor decayed."""
    _event("breach of a lender")
    key, prior, obs = walk.tier.key, walk.inputs.prior, walk.observation
    served_rps = obs.pool_rate_rps if obs.pool_rate_rps is not None else (obs.rate_rps or 0.0)
    last = prior.last_decisions.get(key)
    routed_rps = last.spill_in_rps if last is not None else 0.0
    assert served_rps > 0.0
    assert int(g["borrowed"]) >= round(100 * min(routed_rps / served_rps, 1.0)) - 1
    assert walk.result.state.bias_by_tier[key] == prior.bias_by_tier.get(key, 1.0)


def _unproven(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    d, obs, slo = walk.decision, walk.observation, walk.tier.slo
    assert d.slo_breached is None and d.slo_unproven
    assert obs.attainment_frac is not None and obs.attainment_most_frac is not None
    assert g["att"] == f"{100 * obs.attainment_frac:.2f}"
    assert g["target"] == f"{100 * slo.attainment_frac:.2f}"
    assert g["most"] == f"{100 * obs.attainment_most_frac:.2f}"
    assert _same(g["bias"], _bias_in_effect(walk))
    spans = g["spans"].split(", ") if "spans" in g else []
    for span in spans:
        m = re.fullmatch(rf"p{slo.percentile:g} (TTFT|TPOT) (\d+)ms-(\d+)ms against (\d+)ms", span)
        assert m is not None, span
        bound = slo.ttft_s if m[1] == "TTFT" else slo.tpot_s
        bucket = obs.ttft_bucket_s if m[1] == "TTFT" else obs.tpot_bucket_s
        assert bucket is not None and bucket[1] > bound
        assert tuple(f"{v}ms" for v in (m[2], m[3], m[4])) == (
            _ms(bucket[0]),
            _ms(bucket[1]),
            _ms(bound),
        )


def _loading(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    assert walk.decision.slo_breached is True
    assert int(g["loading"]) == walk.current - walk.ready > 0


def _withdrawn(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    pool, key = g["pool"], walk.tier.key
    last = walk.inputs.prior.last_decisions.get(key)
    assert last is not None and last.weights_by_pool.get(pool, 0.0) > 0.0
    assert walk.decision.weights_by_pool.get(pool, 0.0) == 0.0
    lender = walk.result.decisions[pool]
    if "breached" in g:
        assert lender.slo_breached is True
    elif "bias" in g:
        assert float(g["bias"]) > 1.05
    else:
        obs = walk.inputs.observations.get(pool)
        assert obs is not None and obs.ready_replicas is not None
        assert int(g["loading"]) == _current_of(walk, pool) - obs.ready_replicas > 0


def _current_of(walk: _Walk, pool: str) -> int:
    tier = next(t for t in walk.inputs.tiers if t.key == pool)
    obs = walk.inputs.observations.get(pool)
    assert obs is not None
    return _current(tier, obs, walk.inputs.prior)


def _step_up(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    step = max(walk.tier.scaling.max_scale_up_replicas, 1)
    assert int(g["k"]) == step and n == walk.current + step
    assert before is not None and n < before, walk.decision.message


def _step_down(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    step = max(walk.tier.scaling.max_scale_down_replicas, 1)
    assert int(g["k"]) == step and n == walk.current - step
    assert before is not None and n > before


def _window(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    assert int(g["w"]) == round(walk.tier.scaling.scale_down_stabilization_s)
    assert before is not None and n is not None and before < n <= walk.current


def _inflight(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    obs = walk.observation
    running, waiting = obs.running_requests or 0.0, obs.waiting_requests or 0.0
    assert (int(g["running"]), int(g["waiting"])) == (round(running), round(waiting))
    assert int(g["per"]) == walk.inputs.max_num_seqs_by_tier[walk.tier.key]
    assert n == math.ceil((running + waiting) / int(g["per"]))
    # The floor can exceed the replicas running (a queue longer than they hold): the
    # stabiliser then scales up on the way down; reported, the message says it as it is.
    assert before is not None and before < n


def _load(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    obs = walk.observation
    load_rps = obs.pool_rate_rps if obs.pool_rate_rps is not None else obs.rate_rps or 0.0
    capacity_rps = walk.decision.capacity_rps_per_replica
    assert g["load"] == f"{load_rps:.2f}" and g["cap"] == f"{capacity_rps:.2f}"
    need = math.ceil(load_rps / capacity_rps - 1e-9)
    # A floor for scale-downs only: it keeps replicas the pool has, never adds one.
    assert before is not None and before < n == min(need, walk.current)


def _down_note(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    assert int(g["w"]) == round(walk.tier.scaling.scale_down_stabilization_s)
    assert walk.reason is None and walk.decision.desired_replicas < walk.current


def _engine(walk: _Walk, g: dict[str, str], before: int | None, n: int | None) -> None:
    """Advice names flags the pool has other values of, and at least 1.25x its capacity
    within the SLO, which is never above the plan's (that one may be floored for tails)."""
    d = walk.decision
    assert d.engine_advice is not None and d.message.endswith(d.engine_advice)
    flags = g["args"].split()[::2]
    assert flags == g["old"].split()[::2] and g["args"] != g["old"]
    assert set(flags) <= {"--max-num-batched-tokens", "--max-num-seqs"}
    assert float(g["advised"]) >= 1.25 * float(g["now"]) - 0.01
    assert float(g["now"]) <= d.capacity_rps_per_replica + 0.005


_CHECKS = {
    "budget": _budget,
    "budget_below_minimum": _budget_below_minimum,
    "max": _max,
    "unattainable": _unattainable,
    "lender": _lender,
    "solver_failed": _solver_failed,
    "spill": _spill,
    "min": _min,
    "breach_up": _breach_up,
    "breach": _breach,
    "unproven": _unproven,
    "loading": _loading,
    "withdrawn": _withdrawn,
    "step_up": _step_up,
    "step_down": _step_down,
    "window": _window,
    "fresh_window": _window,
    "inflight": _inflight,
    "load": _load,
    "down_note": _down_note,
    "engine": _engine,
}


def _check_tail(walk: _Walk, tail: str) -> None:
    d = walk.decision
    match = _TAIL.fullmatch(tail)
    assert match is not None, (tail, d.message)
    assert d.unserved_rate_rps > 0.0 and _same(match["u"], d.unserved_rate_rps)
    assert _same(match["r"], d.forecast_rate_rps)
    # Planned spill that would read "0.00 req/s" is left out of the message.
    assert (match["out"] is not None) == (d.planned_spill_out_rps >= 0.005)
    if match["out"] is not None:
        assert _same(match["out"], d.planned_spill_out_rps)
    assert (match["into"] is not None) == (d.planned_spill_in_rps >= 0.005)
    if match["into"] is not None:
        assert _same(match["into"], d.planned_spill_in_rps)


def _cap_pools(inputs: Inputs, gpus: int, model: str | None) -> set[str]:
    """The tier keys of the configured cap quoted as `gpus` (for `model`, or the total)."""
    budget = inputs.budget
    assert budget is not None
    if model is None:
        assert budget.total_gpus == gpus
        return {t.key for t in inputs.tiers}
    assert budget.for_model(model) == gpus
    return {t.key for t in inputs.tiers if t.model == model}


def _check_spill_is_routed(result: Plan, observations: Observations) -> None:
    """The spill a decision reports is what its weights send, at today's rate."""
    live = {k: d for k, d in result.decisions.items() if d.reason not in NOT_PLANNED}
    into: dict[str, float] = {}
    for key, d in live.items():
        obs = observations.get(key)
        rate = (obs.rate_rps or 0.0) if obs is not None else 0.0
        away = sum(w for pool, w in d.weights_by_pool.items() if pool != key)
        assert math.isclose(d.spill_out_rps, rate * away, rel_tol=1e-6, abs_tol=1e-6)
        for pool, w in d.weights_by_pool.items():
            if pool != key:
                into[pool] = into.get(pool, 0.0) + rate * w
    for key, d in live.items():
        assert math.isclose(d.spill_in_rps, into.get(key, 0.0), rel_tol=1e-6, abs_tol=1e-6)


def _same(text: str, value: float) -> bool:
    """`text` is `value` as printed with 2 decimals."""
    return text == f"{value:.2f}"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}ms"


# ------------------------------------------------------------------------ random plans


@st.composite
def _tier(draw: st.DrawFn, i: int) -> Tier:
    min_replicas = draw(st.integers(0, 2))
    return Tier(
        name=f"t{i}",
        namespace="llm",
        model=draw(st.sampled_from((MODEL, MODEL, MODEL, OTHER_MODEL))),
        slo=Slo(
            ttft_s=draw(st.sampled_from((0.3, 0.5, 1.0, 5.0))),
            tpot_s=draw(st.sampled_from((0.02, 0.03, 0.05, 0.1))),
            percentile=draw(st.sampled_from((99.0, 95.0))),
            attainment_frac=draw(st.sampled_from((0.99, 0.95))),
        ),
        pool=Pool(
            f"vllm-t{i}",
            min_replicas,
            draw(st.integers(max(min_replicas, 1), 12)),
            draw(st.sampled_from((1, 1, 2))),
        ),
        priority=draw(st.integers(0, 3)),
        borrow=draw(st.booleans()),
        lend=draw(st.booleans()),
        scaling=Scaling(
            cold_start_s=draw(st.sampled_from((60.0, 120.0))),
            scale_down_stabilization_s=draw(st.sampled_from((0.0, 60.0, 300.0))),
            max_scale_up_replicas=draw(st.sampled_from((1, 2, 4, 100))),
            max_scale_down_replicas=draw(st.sampled_from((1, 3))),
        ),
    )


@st.composite
def _budgets(draw: st.DrawFn, tiers: list[Tier]) -> GpuBudget | None:
    kind = draw(st.sampled_from(("none", "total", "total", "model")))
    if kind == "none":
        return None
    floor = sum(t.pool.min_replicas * t.pool.gpus_per_replica for t in tiers)
    gpus = max(floor + draw(st.integers(-1, 10)), 1)
    if kind == "total":
        return GpuBudget(total_gpus=gpus)
    return GpuBudget(total_gpus=draw(st.sampled_from((None, gpus + 3))), by_model=((MODEL, gpus),))


@st.composite
def _windows(
    draw: st.DrawFn, tier: Tier, now_s: float, rate_rps: float, replicas: int
) -> TierObservation | None:
    freshness = draw(st.sampled_from(("fresh",) * 8 + ("stale", "missing")))
    if freshness == "missing":
        return None
    current = draw(st.sampled_from((replicas, replicas, replicas, None)))
    ready = current if current is None else draw(st.integers(0, current) | st.just(current))
    breach = draw(st.booleans())
    seen = draw(st.booleans())
    attainment = draw(st.none() | st.floats(0.85, 1.0)) if seen else None
    prompt = draw(st.sampled_from((200.0, 1000.0, 3000.0)))
    return TierObservation(
        tier_key=tier.key,
        sampled_at_s=now_s - (5.0 if freshness == "fresh" else 200.0),
        rate_rps=rate_rps,
        window_s=60.0,
        prompt_tokens_mean=prompt,
        output_tokens_mean=draw(st.sampled_from((30.0, 200.0, 600.0))),
        prompt_tokens_p99=draw(st.none() | st.just(4 * prompt)),
        ready_replicas=ready,
        current_replicas=current,
        running_requests=draw(st.none() | st.sampled_from((0.0, 30.0, 700.0, 2500.0))),
        waiting_requests=draw(st.none() | st.sampled_from((0.0, 40.0))),
        ttft_s=tier.slo.ttft_s * (1.6 if breach else 0.6) if seen else None,
        tpot_s=tier.slo.tpot_s * 0.8 if seen else None,
        attainment_frac=attainment,
        attainment_most_frac=(
            None if attainment is None else draw(st.sampled_from((None, attainment, 1.0)))
        ),
        ttft_bucket_s=draw(st.none() | st.sampled_from(_BUCKETS)) if seen else None,
        tpot_bucket_s=draw(st.none() | st.sampled_from(_BUCKETS)) if seen else None,
    )


_BUCKETS = ((0.01, 0.025), (0.025, 0.05), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (2.5, 5.0))


@st.composite
def planning_runs(draw: st.DrawFn) -> tuple[list[Tier], GpuBudget | None, list[list[float]]]:
    """Tiers, a budget, and each tier's demand at 1 to 3 successive decisions."""
    count = draw(st.integers(1, 4))
    tiers = [draw(_tier(i)) for i in range(count)]
    budget = draw(_budgets(tiers))
    ticks = draw(st.integers(1, 4))
    rates = [
        [draw(st.sampled_from((0.0, 0.5, 3.0, 10.0, 30.0, 90.0))) for _ in tiers]
        for _ in range(ticks)
    ]
    return tiers, budget, rates


@settings(max_examples=150, deadline=None)
@given(planning_runs(), st.data())
def test_every_reason_and_message_agree_with_the_numbers(
    h100: latency.LatencyModel,
    run: tuple[list[Tier], GpuBudget | None, list[list[float]]],
    data: st.DataObject,
) -> None:
    tiers, budget, rates_by_tick = run
    replicas = {t.key: data.draw(st.integers(0, 8)) for t in tiers}
    state = PlannerState()
    seqs = {t.key: h100.max_num_seqs for t in tiers}
    now_s = 1000.0
    for rates in rates_by_tick:
        now_s += data.draw(st.sampled_from((15.0, 60.0, 400.0)))
        seen = {}
        for tier, rate in zip(tiers, rates, strict=True):
            window = data.draw(_windows(tier, now_s, rate, replicas[tier.key]))
            if window is not None:
                seen[tier.key] = window
        observations = Observations(seen)
        result = planner.plan(
            tiers=tiers,
            observations=observations,
            model={MODEL: h100, OTHER_MODEL: h100},
            now_s=now_s,
            state=state,
            budget=budget,
        )
        check_plan(result, Inputs(tiers, observations, budget, state, seqs))
        state = result.state
        replicas = {k: d.desired_replicas for k, d in result.decisions.items()}
