"""The runtime around the tick: state loaded once per group, the GPU budget shared between
groups, records that replay, the exporter's series, one tick per group at a time.

Over the adapters' fakes (fault injection is what they are for); the real operator runs
against the testbed in e2e/tests/test_operator_*.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tierscale import records
from tierscale.adapters.envoy.fake import FakeRouter
from tierscale.adapters.kubernetes.fake import FakeCluster, FakeState
from tierscale.adapters.prometheus.fake import FakeMetrics, FieldFails
from tierscale.domain import vllm
from tierscale.domain.metrics import Histogram, MetricInputs, PoolSignals, TierTraffic
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier
from tierscale.handlers.exporter import Exporter
from tierscale.handlers.runtime import (
    ReadyTimes,
    ReadyTimesCluster,
    Runtime,
    ThrottledStatusCluster,
    record_file_name,
)
from tierscale.loop import naming, telemetry
from tierscale.loop.ports import EngineArgs
from tierscale.loop.tick import Ports
from tierscale.settings import Settings
from tierscale_predictor import latency, profiles

MODEL = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))


def _tier(name: str, model: str = "llama", ttft_s: float = 0.5, priority: int = 0) -> Tier:
    return Tier(
        name=name,
        namespace="llm",
        model=model,
        slo=Slo(ttft_s=ttft_s, tpot_s=0.05),
        pool=Pool(deployment=f"vllm-{name}", min_replicas=1, max_replicas=8),
        priority=priority,
        scaling=Scaling(cold_start_s=60.0),
    )


GOLD = _tier("gold", priority=10)
SILVER = _tier("silver", ttft_s=2.0)
QWEN = _tier("qwen", model="qwen")


def _inputs(now_s: float, rates: dict[str, float]) -> MetricInputs:
    traffic, signals = {}, {}
    for key, rate in rates.items():
        traffic[key] = TierTraffic(sampled_at_s=now_s - 1.0, window_s=60.0, rate_rps=rate)
        namespace, _, name = key.partition("/")
        n = max(int(rate * 60), 1)
        signals[f"{namespace}/vllm-{name}"] = PoolSignals(
            sampled_at_s=now_s - 1.0,
            window_s=60.0,
            ttft=Histogram.of([0.09] * n, vllm.TTFT_BUCKETS_S),
            tpot=Histogram.of([0.02] * n, vllm.ITL_BUCKETS_S),
            prompt_tokens=Histogram.of([2000.0] * n, vllm.one_two_five_buckets(131072)),
            output_tokens=Histogram.of([200.0] * n, vllm.one_two_five_buckets(131072)),
            finished_rate_rps=rate,
            running_requests=2.0,
            waiting_requests=0.0,
            kv_usage_frac=0.2,
        )
    return MetricInputs(traffic_by_tier=traffic, signals_by_pool=signals)


class World:
    def __init__(
        self,
        rates: dict[str, float],
        tmp_path: Path,
        tiers: tuple[Tier, ...] = (GOLD, SILVER),
        **settings: object,
    ) -> None:
        self.now_s = 1000.0
        self.cluster = FakeCluster()
        for t in tiers:
            self.cluster.add_deployment(
                t.namespace, t.pool.deployment, replicas=1, engine=EngineArgs(gpus_per_replica=1)
            )
            self.cluster.set_ready(naming.pool_key(t), 1)
        self.rates = rates
        self.metrics = FakeMetrics(lambda _tiers, now_s: _inputs(now_s, self.rates))
        self.router = FakeRouter()
        self.state = FakeState()
        self.exporter = Exporter()
        self.prometheus_errors = 0
        self.runtime = Runtime(
            config=Settings(record_dir=str(tmp_path / "records"), **settings),  # type: ignore[arg-type]
            ports=Ports(self.metrics, self.cluster, self.router, self.state),
            models={},
            default_model=MODEL,
            exporter=self.exporter,
            clock=lambda: self.now_s,
            error_counts={"prometheus": lambda: self.prometheus_errors},
        )

    def tick(self, model: str = "llama", tiers: tuple[Tier, ...] = (GOLD, SILVER)) -> object:
        report = self.runtime.run_group(model, list(tiers))
        self.now_s += 15.0
        return report

    def sample(self, name: str, **labels: str) -> float | None:
        value = self.exporter.registry.get_sample_value(name, labels)
        return None if value is None else float(value)


def test_state_is_loaded_once_and_an_unreadable_one_starts_fresh(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    world.state.corrupt("llama", "{not json")
    report = world.runtime.run_group("llama", [GOLD, SILVER])
    assert report is not None and report.record is not None
    assert report.record.state_in is None, "unreadable state: start from none"
    world.now_s += 15.0
    second = world.runtime.run_group("llama", [GOLD, SILVER])
    assert second is not None and second.record is not None
    assert second.record.state_in == report.record.plan.state, "kept in memory, not reloaded"


def test_a_state_read_that_fails_now_skips_the_tick_and_is_retried(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    world.state.fail_next("load", "API server unreachable")
    assert world.runtime.run_group("llama", [GOLD, SILVER]) is None
    assert world.sample("tierscale_adapter_errors_total", port="state") == 1.0
    assert world.runtime.run_group("llama", [GOLD, SILVER]) is not None


def test_every_decision_is_recorded_and_replays_identically(tmp_path: Path) -> None:
    world = World({GOLD.key: 30.0, SILVER.key: 2.0}, tmp_path)
    report = world.runtime.run_group("llama", [GOLD, SILVER])
    assert report is not None and report.record is not None
    path = tmp_path / "records" / record_file_name(report.record.record_id)
    loaded = records.loads(records.DecisionRecord, path.read_text())
    assert records.same_plan(records.replay(loaded), report.record.plan)


def test_the_gpu_budget_is_shared_between_model_groups(tmp_path: Path) -> None:
    world = World(
        {GOLD.key: 30.0, SILVER.key: 2.0, QWEN.key: 30.0},
        tmp_path,
        tiers=(GOLD, SILVER, QWEN),
        gpu_budget="auto",
    )
    world.cluster.add_node("node-a", 6, "H100")
    first = world.runtime.run_group("llama", [GOLD, SILVER])
    assert first is not None and first.record is not None
    assert first.record.budget is not None and first.record.budget.total_gpus == 6
    used = first.record.plan.total_gpus
    second = world.runtime.run_group("qwen", [QWEN])
    assert second is not None and second.record is not None and second.record.budget is not None
    assert second.record.budget.total_gpus == 6 - used


def test_routing_envoy_refuses_is_held_in_status_and_counted(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    world.router.reject_next = "malformed IP address"
    world.tick()
    status = world.cluster.statuses[GOLD.key]
    hold = next(c for c in status["conditions"] if c["type"] == "Hold")
    assert (hold["status"], hold["reason"]) == ("True", "RoutingRejected")
    assert "malformed IP address" in hold["message"]
    assert world.sample("tierscale_adapter_errors_total", port="envoy") == 1.0
    world.tick()
    hold = next(c for c in world.cluster.statuses[GOLD.key]["conditions"] if c["type"] == "Hold")
    assert hold["status"] == "False", "published on the next tick: no longer held"


def test_prometheus_errors_the_adapter_counts_itself_reach_the_exporter(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    world.prometheus_errors = 14
    world.tick()
    world.tick()
    world.prometheus_errors = 15
    world.tick()
    assert world.sample("tierscale_adapter_errors_total", port="prometheus") == 15.0


def test_nan_or_failed_latency_queries_never_scale_a_tier_to_zero(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    world.tick()
    replicas = {
        t.key: world.cluster.deployments[naming.pool_key(t)].replicas for t in (GOLD, SILVER)
    }
    for field in ("rate_rps", "ttft", "tpot", "prompt_tokens", "running_requests"):
        world.metrics.inject(FieldFails(field, reason="NaN"))
    report = world.tick()
    assert report is not None
    for t in (GOLD, SILVER):
        assert world.cluster.deployments[naming.pool_key(t)].replicas == replicas[t.key]
        decision = report.record.plan.decisions[t.key]  # type: ignore[attr-defined]
        assert decision.reason is Reason.HOLD_STALE_METRICS
        assert decision.desired_replicas == replicas[t.key]


def test_exporter_serves_the_last_tick_and_bills_gpu_seconds(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    reasons = []
    for _ in range(2):
        report = world.runtime.run_group("llama", [GOLD, SILVER])
        assert report is not None and report.record is not None
        reasons.append(report.record.plan.decisions[GOLD.key].reason.value)
        world.now_s += 15.0
    labels = {"namespace": "llm", "tier": "gold", "model": "llama"}
    desired = world.sample(telemetry.DESIRED_REPLICAS, **labels)
    own = world.sample(telemetry.GPUS_OWN, **labels)
    assert desired is not None and own is not None
    billed = world.sample(telemetry.GPU_SECONDS_TOTAL, **labels, source="own")
    assert billed == pytest.approx(own * 15.0), "the first decision's GPUs for 15 s"
    for reason in set(reasons):
        assert world.sample(telemetry.DECISIONS_TOTAL, **labels, reason=reason) == reasons.count(
            reason
        )
    world.runtime.set_live_groups(["llama"])
    world.runtime.set_live_groups([])
    assert world.sample(telemetry.DESIRED_REPLICAS, **labels) is None, "a gone group's series go"


def test_one_tick_per_group_at_a_time_and_shutdown_waits(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    entered, release = threading.Event(), threading.Event()
    real_read = world.metrics.read

    def slow_read(tiers: object, now_s: float) -> MetricInputs:
        entered.set()
        release.wait(10)
        return real_read(tiers, now_s)  # type: ignore[arg-type]

    world.metrics.read = slow_read  # type: ignore[method-assign]
    worker = threading.Thread(target=world.runtime.run_group, args=("llama", [GOLD, SILVER]))
    worker.start()
    assert entered.wait(10)
    assert world.runtime.run_group("llama", [GOLD, SILVER]) is None, "the group is busy"
    threading.Timer(0.2, release.set).start()
    assert world.runtime.shutdown(10.0), "shutdown waits for the running tick"
    worker.join(5)
    assert world.runtime.run_group("llama", [GOLD, SILVER]) is None, "no tick after shutdown"


def test_ready_times_follow_increases_of_ready_replicas(tmp_path: Path) -> None:
    clock = [100.0]
    ready = ReadyTimes(clock=lambda: clock[0])
    ready.seen("llm/vllm-gold", 1)
    assert ready.newest_ready_at_s("llm/vllm-gold") is None, "first sight: not known"
    clock[0] = 130.0
    ready.seen("llm/vllm-gold", 2)
    clock[0] = 160.0
    ready.seen("llm/vllm-gold", 1)
    assert ready.newest_ready_at_s("llm/vllm-gold") == 130.0
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    views = ReadyTimesCluster(world.cluster, ready).pools([GOLD])
    assert views["llm/vllm-gold"].replicas.newest_ready_at_s == 130.0


def test_status_is_written_on_change_and_otherwise_only_every_refresh(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    now = [0.0]
    throttled = ThrottledStatusCluster(world.cluster, refresh_s=60.0, clock=lambda: now[0])
    writes: list[str] = []
    real = world.cluster.write_status

    def counting(tier: Tier, status: object) -> None:
        writes.append(tier.key)
        real(tier, status)  # type: ignore[arg-type]

    world.cluster.write_status = counting  # type: ignore[method-assign]
    status = {
        "replicas": {"desired": 2, "ready": 1},
        "latency": {"observedTtftSeconds": 0.2},
        "conditions": [{"type": "Ready", "status": "False", "reason": "ReplicasStarting"}],
        "lastDecision": {"reason": "ForecastUp", "message": "1 -> 2", "time": "t0"},
    }
    throttled.write_status(GOLD, status)
    now[0] = 15.0
    throttled.write_status(GOLD, status | {"latency": {"observedTtftSeconds": 0.3}})
    assert writes == [GOLD.key], "only numbers changed: not written"
    now[0] = 30.0
    throttled.write_status(GOLD, status | {"replicas": {"desired": 2, "ready": 2}})
    assert len(writes) == 2, "ready replicas changed: written at once"
    now[0] = 95.0
    throttled.write_status(GOLD, status | {"replicas": {"desired": 2, "ready": 2}})
    assert len(writes) == 3, "refreshed after 60 s"


def test_kubernetes_unreadable_decides_nothing_and_fails_readiness(tmp_path: Path) -> None:
    world = World({GOLD.key: 3.0, SILVER.key: 1.0}, tmp_path)
    world.cluster.fail_next("pools", "connection refused")
    report = world.runtime.run_group("llama", [GOLD, SILVER])
    assert report is not None and report.record is None
    assert world.runtime.cluster_readable is False
    assert world.cluster.statuses == {} and world.cluster.scale_calls == []
    assert world.sample("tierscale_adapter_errors_total", port="kubernetes") == 1.0
    assert world.runtime.run_group("llama", [GOLD, SILVER]) is not None
    assert world.runtime.cluster_readable is True
