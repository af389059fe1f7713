"""What the kopf handlers call: one model group's tick, run in a worker thread.

The adapters are synchronous (the official Kubernetes client, prometheus-api-client, the
`envoy` binary), so a tick never runs on kopf's event loop: `run_group` runs in a small
thread pool and kopf's watches, peering and probes stay responsive while a tick waits on
the network. Around `loop.tick` the runtime adds what belongs to one operator process:

- the planner state of each group, loaded from the `StatePort` the first time the group
  ticks in this process (a restart resumes its stabilisation windows and learned
  corrections) and kept from each tick's plan after that (`tick` saves it);
- the GPU budget: `auto` from the nodes' allocatable GPUs (read at most once per
  interval), minus the GPUs the other model groups' last plans use, so groups deciding
  one at a time never plan the same GPUs twice;
- one JSON log line per decision with its record id, the record itself under
  `record_dir` (for `tierscale replay`), and the `/metrics` exporter;
- at most one tick per group at a time, and a shutdown that lets running ticks finish.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from tierscale import records, settings
from tierscale.domain.metrics import PoolReplicas
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.handlers.exporter import Exporter
from tierscale.handlers.logs import FIELDS_ATTR
from tierscale.loop import tick as loop_tick
from tierscale.loop.actions import TierEvent
from tierscale.loop.ports import ClusterPort, PoolView, PortError, ScaleOutcome, StateUnreadable
from tierscale_predictor import latency

log = logging.getLogger("tierscale.decision")
runtime_log = logging.getLogger("tierscale.runtime")


class ReadyTimes:
    """When each Deployment's ready replicas last went up, from the Deployment watch.

    Fed by the kopf index handler (any thread reads it). The time a Deployment's
    `readyReplicas` last increased is when its newest replica became Ready: the planner
    can tell a pool's first minute of metrics from its steady state.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ready: dict[str, int] = {}
        self._newest_at_s: dict[str, float] = {}

    def seen(self, pool_key: str, ready: int) -> None:
        with self._lock:
            before = self._ready.get(pool_key)
            if before is not None and ready > before:
                self._newest_at_s[pool_key] = self._clock()
            self._ready[pool_key] = ready

    def forget(self, pool_key: str) -> None:
        with self._lock:
            self._ready.pop(pool_key, None)
            self._newest_at_s.pop(pool_key, None)

    def newest_ready_at_s(self, pool_key: str) -> float | None:
        with self._lock:
            return self._newest_at_s.get(pool_key)


class ReadyTimesCluster:
    """A `ClusterPort` that adds `ReadyTimes` to the pools another port reads."""

    def __init__(self, inner: ClusterPort, ready_times: ReadyTimes) -> None:
        self._inner = inner
        self._ready_times = ready_times

    def pools(self, tiers: Sequence[Tier]) -> Mapping[str, PoolView]:
        views = self._inner.pools(tiers)
        return {
            key: replace(
                view,
                replicas=PoolReplicas(
                    current=view.replicas.current,
                    ready=view.replicas.ready,
                    newest_ready_at_s=self._ready_times.newest_ready_at_s(key),
                ),
            )
            for key, view in views.items()
        }

    def allocatable_gpus(self) -> Mapping[str, int]:
        return self._inner.allocatable_gpus()

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        return self._inner.scale(pool, replicas, inflight_by_pod)

    def write_status(self, tier: Tier, status: Mapping[str, object]) -> None:
        self._inner.write_status(tier, status)

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        return self._inner.status_context(tier)

    def emit_event(self, tier: Tier, event: TierEvent) -> None:
        self._inner.emit_event(tier, event)


class ThrottledStatusCluster:
    """A `ClusterPort` that writes an SLOTier's status only when what a person acts on
    changed (the decision's reason and replicas, any condition's status or reason), and
    otherwise at most every `refresh_s` (the observed numbers then catch up).

    Without it every tier's status is written every tick: 500 tiers at 15 s are 33
    writes per second to the API server (and etcd) that change nothing but numbers.
    """

    def __init__(self, inner: ClusterPort, refresh_s: float, clock: Callable[[], float]):
        self._inner = inner
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._written: dict[str, tuple[object, float]] = {}

    def pools(self, tiers: Sequence[Tier]) -> Mapping[str, PoolView]:
        return self._inner.pools(tiers)

    def allocatable_gpus(self) -> Mapping[str, int]:
        return self._inner.allocatable_gpus()

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        return self._inner.scale(pool, replicas, inflight_by_pod)

    def write_status(self, tier: Tier, status: Mapping[str, object]) -> None:
        key = status_key(status)
        now = self._clock()
        with self._lock:
            last = self._written.get(tier.key)
        if last is not None and last[0] == key and now - last[1] < self._refresh_s:
            return
        self._inner.write_status(tier, status)
        with self._lock:
            self._written[tier.key] = (key, now)

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        return self._inner.status_context(tier)

    def emit_event(self, tier: Tier, event: TierEvent) -> None:
        self._inner.emit_event(tier, event)


def status_key(status: Mapping[str, object]) -> object:
    """What of a status is worth a write of its own (see `ThrottledStatusCluster`)."""
    decision = status.get("lastDecision")
    replicas = status.get("replicas")
    conditions = status.get("conditions")
    return (
        status.get("observedGeneration"),
        decision.get("reason") if isinstance(decision, Mapping) else None,
        tuple(sorted(replicas.items())) if isinstance(replicas, Mapping) else None,
        tuple(
            (c.get("type"), c.get("status"), c.get("reason"))
            for c in (conditions if isinstance(conditions, list) else [])
            if isinstance(c, Mapping)
        ),
    )


@dataclass
class _Group:
    lock: threading.Lock = field(default_factory=threading.Lock)
    state: PlannerState | None = None
    loaded: bool = False
    planned_gpus: int = 0


class Runtime:
    def __init__(
        self,
        *,
        config: settings.Settings,
        ports: loop_tick.Ports,
        models: Mapping[str, latency.LatencyModel],
        default_model: latency.LatencyModel,
        exporter: Exporter,
        clock: Callable[[], float] = time.time,
        workers: int = 4,
        error_counts: Mapping[str, Callable[[], int]] | None = None,
    ) -> None:
        """`error_counts`: port -> running count of failures an adapter keeps itself
        (the Prometheus adapter counts failed queries without raising); the exporter
        adds what each tick added."""
        self.config = config
        self.ports = ports
        self.exporter = exporter
        self._models = dict(models)
        self._default_model = default_model
        self._clock = clock
        self._tick_config = loop_tick.TickConfig(
            dry_run=config.dry_run, planner=config.planner_config()
        )
        self._error_counts = dict(error_counts or {})
        self._errors_seen = {port: 0 for port in self._error_counts}
        self._errors_lock = threading.Lock()
        self._groups: dict[str, _Group] = {}
        self._groups_lock = threading.Lock()
        self._live_groups: frozenset[str] = frozenset()
        self._allocatable: Mapping[str, int] | None = None
        self._allocatable_at_s = -float("inf")
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tick")
        self._stopping = threading.Event()
        self._inflight = 0
        self._inflight_changed = threading.Condition()
        self.loop: asyncio.AbstractEventLoop | None = None
        """kopf's event loop, once kopf has started (the liveness probe pings it)."""
        self.cluster_readable: bool | None = None
        """Whether the last tick could read the cluster (None: no tick yet)."""
        record_dir = config.record_dir
        self._record_dir = Path(record_dir) if record_dir else None

    # ----------------------------------------------------------------- called by kopf

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._executor

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def clock(self) -> float:
        return self._clock()

    def set_live_groups(self, groups: Collection[str]) -> None:
        """The model groups that have SLOTiers now; the others' gauges and routes go."""
        live = frozenset(groups)
        gone = self._live_groups - live
        self._live_groups = live
        for group in gone:
            self.exporter.forget(group)
            with self._groups_lock:
                self._groups.pop(group, None)

    def live_groups(self) -> frozenset[str]:
        return self._live_groups

    def run_group(self, model: str, tiers: Sequence[Tier]) -> loop_tick.TickReport | None:
        """One tick of one model group; None when it did not run (shutting down, the
        group's previous tick still running, or its saved state unreadable right now)."""
        if self._stopping.is_set():
            return None
        group = self._group(model)
        if not group.lock.acquire(blocking=False):
            runtime_log.warning(
                "tick skipped: the previous tick is still running",
                extra={FIELDS_ATTR: {"model": model}},
            )
            return None
        with self._inflight_changed:
            self._inflight += 1
        try:
            return self._run_locked(model, group, tiers)
        finally:
            group.lock.release()
            with self._inflight_changed:
                self._inflight -= 1
                self._inflight_changed.notify_all()

    def shutdown(self, timeout_s: float) -> bool:
        """Start no new tick; wait up to `timeout_s` for the running ones. True if none
        is left running."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        with self._inflight_changed:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._inflight_changed.wait(left)
            done = self._inflight == 0
        self._executor.shutdown(wait=False, cancel_futures=True)
        return done

    # ----------------------------------------------------------------- one tick

    def _run_locked(
        self, model: str, group: _Group, tiers: Sequence[Tier]
    ) -> loop_tick.TickReport | None:
        if not group.loaded:
            try:
                group.state = self.ports.state.load(model)
                runtime_log.info(
                    "planner state loaded" if group.state else "no saved planner state",
                    extra={FIELDS_ATTR: {"model": model}},
                )
            except StateUnreadable as err:
                runtime_log.warning(str(err), extra={FIELDS_ATTR: {"model": model}})
                group.state = None
            except PortError as err:
                self.exporter.adapter_errors.labels(port="state").inc()
                runtime_log.warning(
                    f"tick skipped: planner state not readable now: {err}",
                    extra={FIELDS_ATTR: {"model": model}},
                )
                return None
            group.loaded = True
        started = time.perf_counter()
        now_s = self._clock()
        report = loop_tick.tick(
            model_group=model,
            tiers=tiers,
            models=self._models_for(tiers),
            budget=self._budget(model, now_s),
            state_in=group.state,
            now_s=now_s,
            ports=self.ports,
            config=self._tick_config,
        )
        tick_s = time.perf_counter() - started
        self.cluster_readable = report.record is not None
        if report.record is not None:
            group.state = report.record.plan.state
            group.planned_gpus = report.record.plan.total_gpus
            self._write_record(report.record)
        self.exporter.observe(report, tick_s, now_s)
        self._count_adapter_errors()
        log_decision(report, tick_s, dry_run=self.config.dry_run)
        return report

    def _count_adapter_errors(self) -> None:
        with self._errors_lock:
            for port, count in self._error_counts.items():
                now = count()
                if now > self._errors_seen[port]:
                    self.exporter.adapter_errors.labels(port=port).inc(
                        now - self._errors_seen[port]
                    )
                self._errors_seen[port] = now

    def _group(self, model: str) -> _Group:
        with self._groups_lock:
            group = self._groups.get(model)
            if group is None:
                group = self._groups[model] = _Group()
            return group

    def _models_for(self, tiers: Sequence[Tier]) -> dict[str, latency.LatencyModel]:
        return {t.model: self._models.get(t.model, self._default_model) for t in tiers}

    def _budget(self, model: str, now_s: float) -> GpuBudget | None:
        """The GPU budget of `model`: the setting (or the nodes' allocatable GPUs) minus
        what the other groups' last plans use."""
        allocatable: Mapping[str, int] = {}
        if self.config.gpu_budget.strip() == "auto":
            if now_s - self._allocatable_at_s >= self.config.control_interval_s:
                try:
                    self._allocatable = self.ports.cluster.allocatable_gpus()
                    self._allocatable_at_s = now_s
                except PortError as err:
                    self.exporter.adapter_errors.labels(port="kubernetes").inc()
                    runtime_log.warning(f"allocatable GPUs not readable, last known kept: {err}")
            allocatable = self._allocatable or {}
        total = settings.parse_gpu_budget(self.config.gpu_budget, dict(allocatable))
        if total is None or total.total_gpus is None:
            return total
        with self._groups_lock:
            others = sum(g.planned_gpus for m, g in self._groups.items() if m != model)
        return replace(total, total_gpus=max(0, total.total_gpus - others))

    def _write_record(self, record: records.DecisionRecord) -> None:
        if self._record_dir is None:
            return
        try:
            self._record_dir.mkdir(parents=True, exist_ok=True)
            path = self._record_dir / record_file_name(record.record_id)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(records.dumps(record))
            tmp.replace(path)
        except (OSError, ValueError) as err:
            runtime_log.warning(f"decision record {record.record_id} not written: {err}")


def record_file_name(record_id: str) -> str:
    """`<model group>@<time>` as a file name (a model name may contain `/`)."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", record_id) + ".json"


def log_decision(report: loop_tick.TickReport, tick_s: float, *, dry_run: bool) -> None:
    """One line per decision: what was decided for each tier and what each write did."""
    fields: dict[str, object] = {
        "model": report.model_group,
        "tick_s": round(tick_s, 4),
        "dry_run": dry_run,
        "errors": [f"{port}: {message}" for port, message in report.errors],
    }
    if report.record is None:
        log.warning("no decision: the cluster could not be read", extra={FIELDS_ATTR: fields})
        return
    plan = report.record.plan
    fields["record_id"] = report.record.record_id
    fields["plan_s"] = None if report.plan_duration_s is None else round(report.plan_duration_s, 4)
    fields["gpus"] = plan.total_gpus
    fields["budget_limited"] = plan.budget_limited
    fields["routing"] = None if report.routing is None else report.routing.value
    fields["scaled"] = {pool: outcome.value for pool, outcome in report.scaled.items()}
    fields["tiers"] = {
        key: {
            "reason": d.reason.value,
            "desired": d.desired_replicas,
            "current": _observed(report, key, "current_replicas"),
            "ready": _observed(report, key, "ready_replicas"),
            "forecast_rps": round(d.forecast_rate_rps, 3),
            "spill_in_rps": round(d.spill_in_rps, 3),
            "spill_out_rps": round(d.spill_out_rps, 3),
            "weights": {pool: round(w, 4) for pool, w in d.weights_by_pool.items()},
            "message": d.message,
        }
        for key, d in sorted(plan.decisions.items())
    }
    level = logging.WARNING if report.errors else logging.INFO
    log.log(level, "decision", extra={FIELDS_ATTR: fields})


def _observed(report: loop_tick.TickReport, tier_key: str, field_name: str) -> int | None:
    record = report.record
    observation = None if record is None else record.observations.get(tier_key)
    value = None if observation is None else getattr(observation, field_name)
    return value if isinstance(value, int) else None
