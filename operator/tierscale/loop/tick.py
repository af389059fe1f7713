"""One tick of the operator's loop for one model group: observe -> decide -> act -> report.

Invariant: a tick reads everything it decides on at its start (the cluster's pools, then
Prometheus), decides once with the pure planner, and writes only what the decision's
translation lists, routes before replicas (a pool that shrinks stops receiving spill
before its pods go). A failure of one port changes what can be done, never what is
believed: Kubernetes unreadable -> no decision at all; Prometheus unreadable -> every
tier is held (no metric is ever read as 0); a failed write is reported and retried by
the next tick (level-triggered: the next tick recomputes from what is, not from what was
attempted).

The fleet simulator runs the same decide and translate steps (`tierscale_sim`), with its
own observe and act on simulated pools.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tierscale import records
from tierscale.domain.metrics import MetricInputs
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.loop import naming, observe, translate
from tierscale.loop.actions import Actions
from tierscale.loop.ports import (
    ClusterPort,
    EngineArgs,
    MetricsPort,
    PoolView,
    PortError,
    RouteOutcome,
    RouterPort,
    RoutesRejected,
    ScaleOutcome,
    StatePort,
)
from tierscale.policy import planner
from tierscale_predictor import latency


@dataclass(frozen=True, slots=True)
class Ports:
    metrics: MetricsPort
    cluster: ClusterPort
    router: RouterPort
    state: StatePort


@dataclass(frozen=True, slots=True)
class TickConfig:
    dry_run: bool = False
    """Plan, write status, Events and metrics; write no Deployment and no route."""
    planner: planner.PlannerConfig = field(default_factory=planner.PlannerConfig)
    translate: translate.TranslateConfig = field(default_factory=translate.TranslateConfig)


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did: the decision record, its actions and what each write returned."""

    model_group: str
    now_s: float
    record: records.DecisionRecord | None
    """None when the cluster could not be read (nothing was decided)."""
    actions: Actions | None
    scaled: Mapping[str, ScaleOutcome] = field(default_factory=dict)
    """pool key -> outcome of its /scale write (absent: not written this tick)."""
    routing: RouteOutcome | None = None
    """None: routes not written (dry-run, or no decision)."""
    errors: tuple[tuple[str, str], ...] = ()
    """(port, message) of every adapter failure in this tick."""
    plan_duration_s: float | None = None
    """Wall-clock seconds the planner took (None: nothing was decided)."""


def tick(
    *,
    model_group: str,
    tiers: Sequence[Tier],
    models: Mapping[str, latency.LatencyModel],
    budget: GpuBudget | None,
    state_in: PlannerState | None,
    now_s: float,
    ports: Ports,
    config: TickConfig,
) -> TickReport:
    """Decide and act for the tiers of one model group (oldest first); see module doc."""
    errors: list[tuple[str, str]] = []
    # observe ----------------------------------------------------------------------
    try:
        pools = ports.cluster.pools(tiers)
    except PortError as err:
        return TickReport(model_group, now_s, None, None, errors=(("kubernetes", str(err)),))
    effective = [with_engine(t, pools.get(naming.pool_key(t))) for t in tiers]
    invalid = {
        t.key: f"Deployment {naming.pool_key(t)} does not exist; create it or fix spec.pool"
        for t in effective
        if not _exists(pools.get(naming.pool_key(t)))
    }
    conflicts = {
        t.key: view.other_writer.describe()
        for t in effective
        if (view := pools.get(naming.pool_key(t))) is not None and view.other_writer is not None
    }
    live = [t for t in effective if t.key not in invalid]
    try:
        measured = ports.metrics.read(live, now_s)
    except PortError as err:
        errors.append(("prometheus", str(err)))
        measured = MetricInputs()
    inputs = replace(
        measured,
        replicas_by_pool={key: view.replicas for key, view in pools.items() if view.exists},
    )
    observations = observe.observations(live, inputs)
    # decide -----------------------------------------------------------------------
    plan_started_s = time.perf_counter()
    result = planner.plan(
        tiers=effective,
        observations=observations,
        model=dict(models),
        now_s=now_s,
        state=state_in,
        budget=budget,
        config=config.planner,
        conflicts=conflicts,
        invalid=invalid,
    )
    plan_duration_s = time.perf_counter() - plan_started_s
    record = records.DecisionRecord(
        record_id=f"{model_group}@{now_s:.3f}",
        model_group=model_group,
        now_s=now_s,
        tiers=tuple(effective),
        observations=observations,
        models=dict(models),
        config=config.planner,
        budget=budget,
        conflicts=conflicts,
        invalid=invalid,
        state_in=state_in,
        plan=result,
        inputs=inputs,
    )
    status_by_tier: dict[str, translate.StatusContext] = {}
    for t in effective:
        try:
            generation, conditions = ports.cluster.status_context(t)
        except PortError as err:
            errors.append(("kubernetes", str(err)))
            continue
        status_by_tier[t.key] = translate.StatusContext(generation, conditions)
    previous = translate.Previous(
        decisions=state_in.last_decisions if state_in is not None else {},
        status_by_tier=status_by_tier,
    )
    acts = translate.actions(
        tiers=effective,
        plan=result,
        observations=observations,
        now_s=now_s,
        previous=previous,
        config=config.translate,
    )
    # act --------------------------------------------------------------------------
    routed: RouteOutcome | None = None
    scaled: dict[str, ScaleOutcome] = {}
    if not config.dry_run:
        routed, rejected = _route(ports, acts, effective, errors)
        if rejected is not None:
            statuses = translate.statuses(
                effective, result, observations, now_s, previous, routing_rejected=rejected
            )
            acts = replace(acts, statuses=statuses)
        scaled = _scale(ports, acts, pools, now_s, errors)
    _report(ports, acts, effective, errors)
    try:
        ports.state.save(model_group, result.state)
    except PortError as err:
        errors.append(("state", str(err)))
    return TickReport(
        model_group, now_s, record, acts, scaled, routed, tuple(errors), plan_duration_s
    )


def with_engine(tier: Tier, view: PoolView | None) -> Tier:
    """The tier with its Deployment's engine arguments (read from the cluster, not the CRD)."""
    engine = view.engine if view is not None else EngineArgs()
    pool = tier.pool
    return replace(
        tier,
        pool=replace(
            pool,
            max_num_seqs=engine.max_num_seqs or pool.max_num_seqs,
            max_num_batched_tokens=engine.max_num_batched_tokens or pool.max_num_batched_tokens,
            max_model_len=engine.max_model_len or pool.max_model_len,
            gpus_per_replica=engine.gpus_per_replica or pool.gpus_per_replica,
            accelerator=engine.accelerator or pool.accelerator,
        ),
    )


def _exists(view: PoolView | None) -> bool:
    return view is not None and view.exists


def _route(
    ports: Ports, acts: Actions, tiers: Sequence[Tier], errors: list[tuple[str, str]]
) -> tuple[RouteOutcome | None, str | None]:
    """(outcome, why the config was rejected); a rejection is also an adapter error."""
    try:
        return ports.router.apply(acts.routing, tiers), None
    except RoutesRejected as err:
        errors.append(("envoy", str(err)))
        return RouteOutcome.REJECTED, str(err)
    except PortError as err:
        errors.append(("envoy", str(err)))
        return None, None


def _scale(
    ports: Ports,
    acts: Actions,
    pools: Mapping[str, PoolView],
    now_s: float,
    errors: list[tuple[str, str]],
) -> dict[str, ScaleOutcome]:
    scaled: dict[str, ScaleOutcome] = {}
    for intent in acts.scale:
        view = pools.get(intent.pool_key)
        if view is None or not view.exists or view.other_writer is not None:
            continue
        current = view.replicas.current
        try:
            inflight: Mapping[str, float] = {}
            if current is not None and intent.replicas < current:
                inflight = ports.metrics.inflight_by_pod(intent.pool_key, now_s)
            scaled[intent.pool_key] = ports.cluster.scale(view, intent.replicas, inflight)
        except PortError as err:
            errors.append(("kubernetes", f"scale {intent.pool_key}: {err}"))
    return scaled


def _report(
    ports: Ports, acts: Actions, tiers: Sequence[Tier], errors: list[tuple[str, str]]
) -> None:
    by_key = {t.key: t for t in tiers}
    for key, status in acts.statuses.items():
        try:
            ports.cluster.write_status(by_key[key], status)
        except PortError as err:
            errors.append(("kubernetes", f"status {key}: {err}"))
    for event in acts.events:
        try:
            ports.cluster.emit_event(by_key[event.tier_key], event)
        except PortError as err:
            errors.append(("kubernetes", f"event {event.tier_key}: {err}"))
