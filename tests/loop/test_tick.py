"""The operator's tick over the adapters' fakes: what it writes, holds and refuses, and why.

Fault injection lives here (the real adapters are tested against the testbed): Prometheus
unreachable, a Deployment missing, another writer, dry-run, a failing write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from tierscale import records
from tierscale.adapters.kubernetes.fake import FakeCluster, FakeState
from tierscale.adapters.prometheus.fake import FakeMetrics, Unreachable
from tierscale.domain import vllm
from tierscale.domain.metrics import Histogram, MetricInputs, PoolSignals, TierTraffic
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier
from tierscale.loop import naming, tick
from tierscale.loop.actions import RoutingIntent
from tierscale.loop.ports import EngineArgs, RouteOutcome, ScaleOutcome
from tierscale_predictor import latency, profiles

MODEL = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))


def _tier(name: str, ttft_s: float, tpot_s: float, priority: int) -> Tier:
    return Tier(
        name=name,
        namespace="llm",
        model="llama",
        slo=Slo(ttft_s=ttft_s, tpot_s=tpot_s),
        pool=Pool(deployment=f"vllm-{name}", min_replicas=1, max_replicas=8),
        priority=priority,
        scaling=Scaling(cold_start_s=60.0),
    )


IDE = _tier("ide", 0.5, 0.05, 20)
BATCH = _tier("batch", 10.0, 0.2, 10)
TIERS = (IDE, BATCH)


class RecordingRouter:
    """A RouterPort that remembers what it was asked to publish, and when."""

    def __init__(self, journal: list[str]) -> None:
        self.applied: list[RoutingIntent] = []
        self._journal = journal

    def apply(self, routing: RoutingIntent, tiers: Sequence[Tier]) -> RouteOutcome:
        self.applied.append(routing)
        self._journal.append("route")
        return RouteOutcome.PUBLISHED


def _inputs(now_s: float, rate_by_tier: dict[str, float]) -> MetricInputs:
    """Envoy rates as given; each pool's vLLM histograms show 2000-token prompts served fast."""
    traffic = {
        t.key: TierTraffic(sampled_at_s=now_s - 2.0, window_s=60.0, rate_rps=rate_by_tier[t.key])
        for t in TIERS
    }
    signals = {}
    for t in TIERS:
        n = max(int(rate_by_tier[t.key] * 60), 1)
        signals[naming.pool_key(t)] = PoolSignals(
            sampled_at_s=now_s - 2.0,
            window_s=60.0,
            ttft=Histogram.of([0.09] * n, vllm.TTFT_BUCKETS_S),
            tpot=Histogram.of([0.02] * n, vllm.ITL_BUCKETS_S),
            prompt_tokens=Histogram.of([2000.0] * n, vllm.one_two_five_buckets(131072)),
            output_tokens=Histogram.of([200.0] * n, vllm.one_two_five_buckets(131072)),
            finished_rate_rps=rate_by_tier[t.key],
            running_requests=4.0,
            waiting_requests=0.0,
            kv_usage_frac=0.2,
        )
    return MetricInputs(traffic_by_tier=traffic, signals_by_pool=signals)


class World:
    def __init__(self, rates: dict[str, float], *, dry_run: bool = False) -> None:
        self.journal: list[str] = []
        self.cluster = FakeCluster()
        for t in TIERS:
            self.cluster.add_deployment(
                t.namespace, t.pool.deployment, replicas=1, engine=EngineArgs(gpus_per_replica=1)
            )
            self.cluster.set_ready(naming.pool_key(t), 1)
        self.metrics = FakeMetrics(lambda tiers, now_s: _inputs(now_s, rates))
        self.router = RecordingRouter(self.journal)
        self.state = FakeState()
        self.dry_run = dry_run
        self.reports: list[tick.TickReport] = []

    def run(self, now_s: float) -> tick.TickReport:
        scaled_before = len(self.cluster.scale_calls)
        last = self.reports[-1] if self.reports else None
        state_in = (
            last.record.plan.state
            if last is not None and last.record is not None
            else self.state.load("llama")
        )
        report = tick.tick(
            model_group="llama",
            tiers=TIERS,
            models={"llama": MODEL},
            budget=None,
            state_in=state_in,
            now_s=now_s,
            ports=tick.Ports(self.metrics, self.cluster, self.router, self.state),
            config=tick.TickConfig(dry_run=self.dry_run),
        )
        self.journal.extend("scale" for _ in self.cluster.scale_calls[scaled_before:])
        self.reports.append(report)
        return report


def _decision(report: tick.TickReport, tier: Tier) -> tuple[Reason, int]:
    assert report.record is not None
    d = report.record.plan.decisions[tier.key]
    return d.reason, d.desired_replicas


def test_demand_scales_the_deployment_routes_first_and_records_replay() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0})
    report = world.run(1000.0)
    reason, desired = _decision(report, IDE)
    assert desired > 1 and report.scaled[naming.pool_key(IDE)] is ScaleOutcome.SCALED
    assert world.cluster.deployments[naming.pool_key(IDE)].replicas == desired
    assert world.journal[0] == "route" and "scale" in world.journal
    assert world.state.load("llama") == report.record.plan.state  # type: ignore[union-attr]
    assert report.record is not None
    loaded = records.loads(records.DecisionRecord, records.dumps(report.record))
    assert records.same_plan(records.replay(loaded), report.record.plan)


def test_prometheus_unreachable_holds_every_tier_and_scales_nothing() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0})
    world.metrics.inject(Unreachable())
    report = world.run(1000.0)
    assert {_decision(report, t)[0] for t in TIERS} == {Reason.HOLD_STALE_METRICS}
    assert report.scaled == {}
    assert all(d.replicas == 1 for d in world.cluster.deployments.values())


def test_a_missing_deployment_is_invalid_and_the_other_tier_is_still_planned() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0})
    world.cluster.delete_deployment(naming.pool_key(BATCH))
    report = world.run(1000.0)
    reason, _ = _decision(report, BATCH)
    assert reason is Reason.INVALID_SPEC
    assert (
        "llm/vllm-batch does not exist"
        in world.cluster.statuses[BATCH.key]["lastDecision"]["message"]
    )
    assert naming.pool_key(BATCH) not in report.scaled
    assert report.scaled[naming.pool_key(IDE)] is ScaleOutcome.SCALED


def test_the_deployments_max_model_len_closes_the_prompt_histograms_top_bucket() -> None:
    # vLLM on --max-model-len 16384 stops its length buckets at 10,000: the prompts above
    # (exponential, mean 5,221, cut at the limit) are read up to the limit, not as 10,000.
    n = 4000
    prompts = [min(-5221.0 * math.log(1.0 - (i + 0.5) / n), 16384.0) for i in range(n)]

    def inputs(tiers: Sequence[Tier], now_s: float) -> MetricInputs:
        base = _inputs(now_s, {IDE.key: 2.0, BATCH.key: 1.0})
        key = naming.pool_key(BATCH)
        signals = replace(
            base.signals_by_pool[key],
            prompt_tokens=Histogram.of(prompts, vllm.one_two_five_buckets(16384)),
        )
        return replace(base, signals_by_pool={**base.signals_by_pool, key: signals})

    p99_by_engine: dict[int | None, float | None] = {}
    for limit in (None, 16384):
        world = World({IDE.key: 2.0, BATCH.key: 1.0})
        world.cluster.delete_deployment(naming.pool_key(BATCH))
        world.cluster.add_deployment(
            BATCH.namespace,
            BATCH.pool.deployment,
            engine=EngineArgs(gpus_per_replica=1, max_model_len=limit),
        )
        world.cluster.set_ready(naming.pool_key(BATCH), 1)
        world.metrics = FakeMetrics(inputs)
        report = world.run(1000.0)
        assert report.record is not None
        tier = {t.key: t for t in report.record.tiers}[BATCH.key]
        assert tier.pool.max_model_len == limit
        observed = report.record.observations.get(BATCH.key)
        assert observed is not None
        p99_by_engine[limit] = observed.prompt_tokens_p99
    assert p99_by_engine[None] == 10_000.0  # Prometheus' reading: 39 % short of 16,384
    closed = p99_by_engine[16384]
    assert closed is not None and 15_000.0 < closed <= 16_384.0


def test_an_hpa_is_a_conflict_with_one_warning_event_and_no_write() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0})
    world.cluster.add_hpa("llm", "ide-hpa", IDE.pool.deployment)
    first, second = world.run(1000.0), world.run(1015.0)
    for report in (first, second):
        reason, desired = _decision(report, IDE)
        assert reason is Reason.CONFLICT and desired == 1
        assert naming.pool_key(IDE) not in report.scaled
    conflict_events = [e for e in world.cluster.events if e.reason is Reason.CONFLICT]
    assert len(conflict_events) == 1 and conflict_events[0].warning
    assert "ide-hpa" in conflict_events[0].message
    world.cluster.delete_hpa("llm", "ide-hpa")
    resumed = world.run(1030.0)
    assert resumed.scaled[naming.pool_key(IDE)] is ScaleOutcome.SCALED


def test_dry_run_writes_status_and_events_but_no_replicas_and_no_routes() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0}, dry_run=True)
    report = world.run(1000.0)
    _, desired = _decision(report, IDE)
    assert desired > 1
    assert world.cluster.scale_calls == [] and world.router.applied == []
    assert report.routing is None
    assert set(world.cluster.statuses) == {IDE.key, BATCH.key}
    assert world.cluster.events


def test_a_restart_resumes_from_the_saved_state_without_repeating_events() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0})
    world.run(1000.0)
    world.run(1015.0)  # scaled at 1000, steady from here on
    events = len(world.cluster.events)
    world.reports.clear()  # a new process: nothing in memory, state from its ConfigMap
    report = world.run(1030.0)
    assert report.record is not None and report.record.state_in is not None
    assert len(world.cluster.events) == events


def test_a_failing_status_write_is_reported_and_the_tick_still_acts() -> None:
    world = World({IDE.key: 30.0, BATCH.key: 1.0})
    world.cluster.fail_next("write_status")
    report = world.run(1000.0)
    assert any(port == "kubernetes" and "status" in message for port, message in report.errors)
    assert report.scaled[naming.pool_key(IDE)] is ScaleOutcome.SCALED
