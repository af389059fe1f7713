"""Replay a stretch of Prometheus history through the operator's own tick, in dry-run.

At every control interval between `start_s` and `end_s` the live operator's step runs
(`loop.tick.tick`, with `TickConfig(dry_run=True)`): the Prometheus adapter reads the
inputs as of that instant (from `history.RangeTransport`), the cluster port reports the
replicas Prometheus saw then, the planner decides with the state the previous tick
handed it, and the translation produces statuses and Events that are collected, not
written. So a backtest says exactly what tierscale in dry-run would have said at each of
those instants, next to what the cluster actually ran. As in dry-run, each decision sees
the replicas that actually ran (not the ones it would have set): its decisions are what
it would have asked for at that moment, not a simulation of a cluster it had driven
(the fleet simulator answers that question).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tierscale.adapters.prometheus.client import PrometheusMetrics
from tierscale.backtest import history
from tierscale.domain.metrics import PoolReplicas
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.loop import naming
from tierscale.loop import tick as loop_tick
from tierscale.loop.actions import RoutingIntent, TierEvent
from tierscale.loop.ports import EngineArgs, PoolView, RouteOutcome, ScaleOutcome
from tierscale.policy import planner
from tierscale_predictor import latency


class HistoryCluster:
    """`ClusterPort` over Prometheus' record of the replicas; writes nothing."""

    def __init__(self, engine_by_pool: Mapping[str, EngineArgs]) -> None:
        self._engine_by_pool = dict(engine_by_pool)
        self.replicas_by_pool: dict[str, PoolReplicas] = {}
        self.events: list[tuple[float, TierEvent]] = []
        self.now_s = 0.0

    def pools(self, tiers: Sequence[Tier]) -> Mapping[str, PoolView]:
        out: dict[str, PoolView] = {}
        for t in tiers:
            key = naming.pool_key(t)
            out[key] = PoolView(
                pool_key=key,
                exists=True,
                replicas=self.replicas_by_pool.get(key, PoolReplicas(current=None, ready=None)),
                engine=self._engine_by_pool.get(key, EngineArgs()),
            )
        return out

    def allocatable_gpus(self) -> Mapping[str, int]:
        return {}

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        return ScaleOutcome.UNCHANGED  # never called: the backtest runs in dry-run

    def write_status(self, tier: Tier, status: Mapping[str, Any]) -> None:
        return None

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        return None, ()

    def emit_event(self, tier: Tier, event: TierEvent) -> None:
        self.events.append((self.now_s, event))


class _NoRoutes:
    """`RouterPort` of a dry run: never called (routes are not written)."""

    def apply(self, routing: RoutingIntent, tiers: Sequence[Tier]) -> RouteOutcome:
        return RouteOutcome.UNCHANGED


class _StateInMemory:
    """`StatePort` of one backtest: the state each tick hands the next (the engine carries
    it itself; this only satisfies the tick's save)."""

    def __init__(self) -> None:
        self.by_model: dict[str, PlannerState] = {}

    def load(self, model: str) -> PlannerState | None:
        return self.by_model.get(model)

    def save(self, model: str, state: PlannerState) -> None:
        self.by_model[model] = state


@dataclass(frozen=True, slots=True)
class TierTick:
    """One tier at one tick: what tierscale would have done, and what ran."""

    at_s: float
    tier_key: str
    desired_replicas: int | None
    """None: no decision (the cluster read failed, which a backtest never does)."""
    reason: str
    message: str
    actual_replicas: float | None
    """`spec.replicas` as Prometheus saw it (None: not scraped at that instant)."""
    ready_replicas: float | None
    gpus_per_replica: int
    observed_rate_rps: float | None
    forecast_rate_rps: float
    observed_ttft_s: float | None
    observed_tpot_s: float | None
    predicted_ttft_s: float | None
    predicted_tpot_s: float | None
    attainment_frac: float | None
    slo_ttft_s: float
    slo_tpot_s: float
    attainment_target_frac: float
    spill_out_rps: float
    spill_in_rps: float
    unserved_rps: float

    @property
    def predicts_miss(self) -> bool:
        """The plan itself says the SLO will not hold: demand left unserved, or a predicted
        latency above the target (e.g. capped by maxReplicas or the budget)."""
        if self.unserved_rps > 1e-9:
            return True
        ttft, tpot = self.predicted_ttft_s, self.predicted_tpot_s
        return (ttft is not None and ttft > self.slo_ttft_s) or (
            tpot is not None and tpot > self.slo_tpot_s
        )

    @property
    def observed_miss(self) -> bool:
        return self.attainment_frac is not None and (
            self.attainment_frac < self.attainment_target_frac
        )


@dataclass
class BacktestResult:
    start_s: float
    end_s: float
    interval_s: float
    replica_source: str
    ticks: list[TierTick] = field(default_factory=list)
    tiers: list[Tier] = field(default_factory=list)
    range_requests: int = 0
    prometheus_errors: int = 0
    last_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Config:
    start_s: float
    end_s: float
    interval_s: float = 15.0
    window_s: float = 60.0
    stale_after_s: float = 90.0
    rate_history_s: float = 900.0
    timeout_s: float = 30.0
    use_recording_rules: bool = False
    replica_source: history.ReplicaSource = "auto"
    planner: planner.PlannerConfig = field(default_factory=planner.PlannerConfig)
    prometheus_url: str = "http://localhost:9090"
    """For messages only: every query goes through the transport."""


def run(
    *,
    tiers: Sequence[Tier],
    engine_by_pool: Mapping[str, EngineArgs],
    models_by_served: Mapping[str, latency.LatencyModel],
    default_model: latency.LatencyModel,
    budget: GpuBudget | None,
    transport: history.RangeTransport,
    config: Config,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Every tick of `[start_s, end_s]` for every model group of `tiers`; see module doc."""
    started = time.monotonic()
    metrics = PrometheusMetrics(
        config.prometheus_url,
        window_s=config.window_s,
        stale_after_s=config.stale_after_s,
        rate_history_s=config.rate_history_s,
        history_step_s=config.interval_s,
        timeout_s=config.timeout_s,
        use_recording_rules=config.use_recording_rules,
        transport=transport,
    )
    cluster = HistoryCluster(engine_by_pool)
    ports = loop_tick.Ports(
        metrics=metrics, cluster=cluster, router=_NoRoutes(), state=_StateInMemory()
    )
    tick_config = loop_tick.TickConfig(dry_run=True, planner=config.planner)
    pools = sorted({(t.namespace, t.pool.deployment) for t in tiers})
    replica_q = _replica_queries(transport, pools, config)
    groups: dict[str, list[Tier]] = {}
    for t in tiers:
        groups.setdefault(t.model, []).append(t)
    states: dict[str, PlannerState | None] = dict.fromkeys(groups)
    result = BacktestResult(
        config.start_s, config.end_s, config.interval_s, replica_q.source, tiers=list(tiers)
    )
    times = [t for t in transport.grid() if t >= config.start_s - 1e-6]
    for index, now_s in enumerate(times):
        seen = history.replicas_at(transport, replica_q, now_s, config.timeout_s)
        cluster.now_s = now_s
        cluster.replicas_by_pool = {
            f"{ns}/{dep}": PoolReplicas(current=_int(cur), ready=_int(ready))
            for (ns, dep), (cur, ready) in seen.items()
        }
        for model, group in groups.items():
            report = loop_tick.tick(
                model_group=model,
                tiers=group,
                models={t.model: models_by_served.get(t.model, default_model) for t in group},
                budget=budget,
                state_in=states[model],
                now_s=now_s,
                ports=ports,
                config=tick_config,
            )
            if report.record is None:
                continue
            states[model] = report.record.plan.state
            result.ticks.extend(_tier_ticks(report, cluster))
        if progress is not None:
            progress(index + 1, len(times))
    result.range_requests = transport.range_requests
    result.prometheus_errors = metrics.errors_total
    result.last_errors = [f"{e.input_name}: {e.reason}" for e in metrics.last_errors]
    result.wall_s = time.monotonic() - started
    return result


def _replica_queries(
    transport: history.RangeTransport, pools: list[tuple[str, str]], config: Config
) -> history.ReplicaQueries:
    if config.replica_source != "auto":
        return history.replica_queries(pools, config.replica_source)
    ksm = history.replica_queries(pools, "kube-state-metrics")
    if history.has_series(transport, ksm.current, config.timeout_s):
        return ksm
    return history.replica_queries(pools, "vllm-pods")


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def _tier_ticks(report: loop_tick.TickReport, cluster: HistoryCluster) -> list[TierTick]:
    assert report.record is not None
    record = report.record
    out = []
    for t in record.tiers:
        d = record.plan.decisions.get(t.key)
        obs = record.observations.by_tier.get(t.key)
        replicas = cluster.replicas_by_pool.get(naming.pool_key(t))
        out.append(
            TierTick(
                at_s=record.now_s,
                tier_key=t.key,
                desired_replicas=d.desired_replicas if d else None,
                reason=d.reason.value if d else "",
                message=d.message if d else "",
                actual_replicas=replicas.current if replicas else None,
                ready_replicas=replicas.ready if replicas else None,
                gpus_per_replica=t.pool.gpus_per_replica or 1,
                observed_rate_rps=obs.rate_rps if obs else None,
                forecast_rate_rps=d.forecast_rate_rps if d else 0.0,
                observed_ttft_s=obs.ttft_s if obs else None,
                observed_tpot_s=obs.tpot_s if obs else None,
                predicted_ttft_s=d.predicted_ttft_s if d else None,
                predicted_tpot_s=d.predicted_tpot_s if d else None,
                attainment_frac=obs.attainment_frac if obs else None,
                slo_ttft_s=t.slo.ttft_s,
                slo_tpot_s=t.slo.tpot_s,
                attainment_target_frac=t.slo.attainment_frac,
                spill_out_rps=d.spill_out_rps if d else 0.0,
                spill_in_rps=d.spill_in_rps if d else 0.0,
                unserved_rps=d.unserved_rate_rps if d else 0.0,
            )
        )
    return out
