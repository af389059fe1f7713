"""tierscale's own metrics on `/metrics`: what each tick decided, and what the loop costs.

Two kinds of series, one prometheus-client registry:

- per-tier gauges, exactly the `MetricSample`s of the last tick of each model group
  (`Actions.metrics`, named in `loop.telemetry`), served as a snapshot: a tier that was
  deleted, or a group that stopped, disappears at once instead of leaving a stale series;
- counters and histograms the shell keeps: decisions by reason, GPU-seconds attributed to
  each tier (own pool and borrowed from tighter tiers' pools, integrated over time: the
  GPUs of one decision are billed for the time until the next one), plan and tick
  durations, adapter errors by port, Kubernetes requests made by the ticks.

The text format is Prometheus' classic 0.0.4 (every Prometheus reads it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from tierscale.loop import telemetry
from tierscale.loop.actions import MetricSample
from tierscale.loop.tick import TickReport

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

HELP: dict[str, str] = {
    telemetry.DESIRED_REPLICAS: "Replicas the last decision wants for the tier's own pool.",
    telemetry.READY_REPLICAS: "Ready replicas of the tier's pool when it was decided.",
    telemetry.FORECAST_RATE: "Demand the plan provisions for (requests/s, cold-start horizon).",
    telemetry.OBSERVED_RATE: "Requests/s arriving for the tier (Envoy route counter).",
    telemetry.CAPACITY_PER_REPLICA: "Requests/s one replica of the pool serves within its SLO.",
    telemetry.PREDICTED_TTFT: "Predicted TTFT at the SLO percentile at the planned load (s).",
    telemetry.PREDICTED_TPOT: "Predicted TPOT at the SLO percentile at the planned load (s).",
    telemetry.OBSERVED_TTFT: "Observed TTFT of the pool at the SLO percentile (s).",
    telemetry.OBSERVED_TPOT: "Observed TPOT of the pool at the SLO percentile (s).",
    telemetry.TARGET_TTFT: "TTFT target of the tier (s).",
    telemetry.TARGET_TPOT: "TPOT target of the tier (s).",
    telemetry.ATTAINMENT: "Observed share of the pool's requests meeting the tier's SLO.",
    telemetry.ATTAINMENT_TARGET: "Share of requests the SLO promises to meet.",
    telemetry.SPILL_IN: "Looser tiers' requests/s planned onto this tier's pool.",
    telemetry.SPILL_OUT: "This tier's requests/s planned onto tighter tiers' pools.",
    telemetry.UNSERVED: "Demand (requests/s) the plan cannot serve within the SLO.",
    telemetry.GPUS_OWN: "GPUs of the tier's own pool serving its own traffic.",
    telemetry.GPUS_BORROWED: "GPUs of tighter tiers' pools serving this tier's spilled traffic.",
    telemetry.HOLD: "1 while the tier is held (stale metrics or another writer), else 0.",
    telemetry.REASON_INFO: "1 for the reason of the tier's last decision (label reason).",
}

PLAN_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class _Billing:
    at_s: float
    gpus: Mapping[tuple[str, str, str, str], float]
    """(namespace, tier, model, source) -> GPUs in force since `at_s`."""


class Exporter:
    """The operator's registry; `observe` is called once per tick (any thread)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._snapshots: dict[str, tuple[MetricSample, ...]] = {}
        self._billing: dict[str, _Billing] = {}
        self.registry.register(_Snapshots(self))
        labels = ["namespace", "tier", "model"]
        self.decisions = Counter(
            telemetry.DECISIONS_TOTAL,
            "Decisions taken, by tier and reason.",
            [*labels, "reason"],
            registry=self.registry,
        )
        self.gpu_seconds = Counter(
            telemetry.GPU_SECONDS_TOTAL,
            "GPU-seconds attributed to a tier: source=own (its pool) or borrowed (tighter "
            "tiers' pools serving its spilled traffic).",
            [*labels, "source"],
            registry=self.registry,
        )
        self.plan_duration = Histogram(
            telemetry.PLAN_DURATION,
            "Seconds one planner.plan call took (one model group).",
            buckets=PLAN_BUCKETS_S,
            registry=self.registry,
        )
        self.tick_duration = Histogram(
            "tierscale_tick_duration_seconds",
            "Seconds one whole tick took (observe, plan, act) for one model group.",
            buckets=PLAN_BUCKETS_S,
            registry=self.registry,
        )
        self.adapter_errors = Counter(
            telemetry.ADAPTER_ERRORS_TOTAL,
            "Failures of an adapter (port: kubernetes, prometheus, envoy, state).",
            ["port"],
            registry=self.registry,
        )
        self.kubernetes_requests = Counter(
            "tierscale_kubernetes_requests_total",
            "Requests the ticks made to the Kubernetes API server (kopf's watches excluded).",
            ["method"],
            registry=self.registry,
        )
        self.last_tick = Gauge(
            "tierscale_last_tick_timestamp_seconds",
            "Unix time of the last tick of each model group in this process.",
            ["model"],
            registry=self.registry,
        )
        self.budget = Gauge(
            telemetry.BUDGET_GPUS,
            "GPU budget of the last decision of each model group (absent: unlimited).",
            ["model"],
            registry=self.registry,
        )
        self.planned = Gauge(
            telemetry.PLANNED_GPUS,
            "GPUs the last plan of each model group uses.",
            ["model"],
            registry=self.registry,
        )

    def observe(self, report: TickReport, tick_s: float, wall_s: float) -> None:
        """Record one tick: its samples replace the group's, counters advance."""
        for port, _ in report.errors:
            self.adapter_errors.labels(port=port).inc()
        self.tick_duration.observe(tick_s)
        self.last_tick.labels(model=report.model_group).set(wall_s)
        if report.record is None or report.actions is None:
            return
        if report.plan_duration_s is not None:
            self.plan_duration.observe(report.plan_duration_s)
        plan = report.record.plan
        budget = report.record.budget
        if budget is not None and budget.total_gpus is not None:
            self.budget.labels(model=report.model_group).set(budget.total_gpus)
        self.planned.labels(model=report.model_group).set(plan.total_gpus)
        for tier in report.record.tiers:
            decision = plan.decisions.get(tier.key)
            if decision is not None:
                self.decisions.labels(
                    namespace=tier.namespace,
                    tier=tier.name,
                    model=tier.model,
                    reason=decision.reason.value,
                ).inc()
        samples = report.actions.metrics
        with self._lock:
            self._bill(report.model_group, report.now_s, samples)
            self._snapshots[report.model_group] = samples

    def forget(self, model_group: str) -> None:
        """The group is gone (its last SLOTier was deleted): its gauges go too."""
        with self._lock:
            self._snapshots.pop(model_group, None)
            self._billing.pop(model_group, None)
        for gauge in (self.last_tick, self.budget, self.planned):
            with contextlib.suppress(KeyError):
                gauge.remove(model_group)

    def samples(self) -> list[MetricSample]:
        with self._lock:
            return [s for group in sorted(self._snapshots) for s in self._snapshots[group]]

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _bill(self, group: str, now_s: float, samples: Iterable[MetricSample]) -> None:
        """Bill the GPUs of the previous decision for the time until this one."""
        previous = self._billing.get(group)
        if previous is not None and now_s > previous.at_s:
            elapsed_s = now_s - previous.at_s
            for (namespace, tier, model, source), gpus in previous.gpus.items():
                if gpus > 0.0:
                    self.gpu_seconds.labels(
                        namespace=namespace, tier=tier, model=model, source=source
                    ).inc(gpus * elapsed_s)
        gpus_now: dict[tuple[str, str, str, str], float] = {}
        sources = {telemetry.GPUS_OWN: "own", telemetry.GPUS_BORROWED: "borrowed"}
        for sample in samples:
            kind = sources.get(sample.name)
            if kind is not None:
                key = (
                    sample.labels["namespace"],
                    sample.labels["tier"],
                    sample.labels["model"],
                    kind,
                )
                gpus_now[key] = sample.value
        self._billing[group] = _Billing(now_s, gpus_now)


class _Snapshots(Collector):
    """Serves the last tick's samples of every group as gauge families."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterable[Metric]:
        by_name: dict[str, list[MetricSample]] = {}
        for sample in self._exporter.samples():
            by_name.setdefault(sample.name, []).append(sample)
        for name in sorted(by_name):
            samples = by_name[name]
            label_names = sorted({k for s in samples for k in s.labels})
            family = GaugeMetricFamily(
                name, HELP.get(name, name.replace("_", " ")), labels=label_names
            )
            for sample in samples:
                family.add_metric([sample.labels.get(k, "") for k in label_names], sample.value)
            yield family

    def describe(self) -> Iterable[Metric]:
        return []
