"""`tierscale backtest` against the testbed's Prometheus after a recorded run.

Setup: two tiers, each routed by Envoy to its own pool of simulated vLLM pods (gold 2,
bronze 1), step load through Envoy (2 req/s for 12 s, then 12 req/s for 12 s; 4000-token
prompts, so one gold replica serves about 6.7 req/s within its SLO by the bundled
profile). Then the CLI replays that stretch of history with a 2 s control interval and
the testbed's 10 s metrics window. Checks:

- the inputs of every tick are what the live adapter reads at that instant: the range
  queries answer exactly what instant queries at the tick times return;
- the actual replicas come from the pods exporting vLLM metrics (no kube-state-metrics in
  the testbed) and equal the pools' sizes while they serve; the GPU-hours of "actual" are
  those replicas x 1 GPU x the interval;
- tierscale decides every tick once metrics exist (no tier held during the load), asks
  for more gold replicas at the high step than at the low one, and the outputs (table,
  timeline.csv, summary.json, plots) are written;
- bad input gets a clear error and exit code 2.
"""

from __future__ import annotations

import csv
import json
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy, wait_until
from tierscale_testbed.prometheus import TestbedPrometheus
from tierscale_testbed.pytest_workload import run_loadgen_cli
from tierscale_testbed.simvllm import manifests
from tierscale_testbed.simvllm.process import SimVllmProcess

from tierscale.adapters.envoy import routing
from tierscale.adapters.prometheus.client import ApiClientTransport, PrometheusMetrics
from tierscale.api import codec
from tierscale.backtest import history
from tierscale.cli import main
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.loop.naming import cluster_name, tier_stat_name

pytestmark = [pytest.mark.e2e]

REPLICAS = {"gold": 2, "bronze": 1}
SLOS = {
    "gold": Slo(ttft_s=0.5, tpot_s=0.05, percentile=99.0),
    "bronze": Slo(ttft_s=2.0, tpot_s=0.1, percentile=90.0),
}
INTERVAL_S = 2.0
WINDOW_S = 10.0
STALE_AFTER_S = 30.0
RATE_HISTORY_S = 20.0
STEP_S = 12.0


@dataclass(frozen=True)
class Recorded:
    namespace: str
    tiers: tuple[Tier, ...]
    tiers_file: Path
    start_s: float
    high_from_s: float
    end_s: float
    prometheus: TestbedPrometheus


@pytest.fixture(scope="module")
def recorded(
    cluster: Cluster,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    prometheus: TestbedPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Recorded]:
    namespace = cluster.create_namespace(f"backtest-{secrets.token_hex(3)}")
    try:
        yield _record(cluster, namespace, simvllm, envoy, prometheus, tmp_path_factory)
    finally:
        cluster.delete_namespace(namespace)


def _record(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    prometheus: TestbedPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Recorded:
    suffix = secrets.token_hex(2)
    deployments = {t: f"{t}-{suffix}" for t in REPLICAS}
    cluster.apply(
        [
            manifests.vllm_deployment(dep, namespace, tier=t, replicas=REPLICAS[t], cold_start_s=1)
            for t, dep in deployments.items()
        ]
    )
    for t, dep in deployments.items():
        simvllm.wait_for_serving(namespace, dep, REPLICAS[t], timeout_s=45)
    pools = {t: envoy.pool(namespace, dep) for t, dep in deployments.items()}
    envoy.apply(
        routing.RoutingTable(
            tiers=tuple(
                routing.TierRoute(tier_stat_name(namespace, t), "x-slo-tier", t, {p.name: 1000})
                for t, p in pools.items()
            ),
            pools=tuple(sorted(pools.values(), key=lambda p: p.name)),
        )
    )
    for t, dep in deployments.items():
        wait_until(_hosts_up(envoy, cluster_name(namespace, dep), REPLICAS[t]), 10, dep)
    prometheus.wait_for_targets(
        "vllm",
        lambda ts: (
            sum(t["labels"].get("namespace") == namespace and t["health"] == "up" for t in ts)
            == sum(REPLICAS.values())
        ),
    )
    out_dir = tmp_path_factory.mktemp("backtest-load")
    start_s = time.time()
    summary = run_loadgen_cli(
        envoy.listener_url,
        *("--pattern", f"step:2/12:{STEP_S:g}", "--max-duration-s", str(2 * STEP_S)),
        *("--max-requests", "1000", "--drain-timeout-s", "30"),
        *("--prompt-tokens", "4000", "--output-tokens", "24"),
        *("--tier-mix", "gold=2,bronze=1", "--seed", "7"),
        json_path=out_dir / "summary.json",
        timeout_s=120,
    )
    assert summary["exit_code"] == 0, summary["table"]
    end_s = time.time()
    time.sleep(2.0)  # one more scrape of everything
    tiers = tuple(
        Tier(name=t, namespace=namespace, model="m", slo=SLOS[t], pool=Pool(deployments[t]))
        for t in deployments
    )
    tiers_file = out_dir / "tiers.yaml"
    tiers_file.write_text(yaml.safe_dump_all([codec.to_resource(t) for t in tiers]))
    routes = "|".join(tier_stat_name(namespace, t) for t in deployments)
    assert prometheus.query(f'envoy_vhost_route_upstream_rq_total{{envoy_route=~"{routes}"}}')
    return Recorded(namespace, tiers, tiers_file, start_s, start_s + STEP_S, end_s, prometheus)


def _hosts_up(envoy: TestbedEnvoy, cluster: str, count: int) -> Callable[[], bool | None]:
    return lambda: envoy.process.host_count(cluster) == count or None


def _backtest(recorded: Recorded, out: Path, *extra: str) -> int:
    return main(
        [
            "backtest",
            *("--prometheus", recorded.prometheus.url),
            *("--from", f"{recorded.start_s + WINDOW_S:.3f}"),
            *("--to", f"{recorded.end_s:.3f}"),
            *("--tiers", str(recorded.tiers_file)),
            *("--interval", f"{INTERVAL_S:g}s", "--window", f"{WINDOW_S:g}s"),
            *("--stale-after", f"{STALE_AFTER_S:g}s", "--rate-history", f"{RATE_HISTORY_S:g}s"),
            *("--out", str(out)),
            *extra,
        ]
    )


def test_backtest_reports_what_tierscale_would_have_done(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _backtest(recorded, tmp_path) == 0
    printed = capsys.readouterr()
    assert "backtest: tierscale (dry-run) vs actual" in printed.out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replica_source"] == "vllm-pods"
    assert summary["prometheus_errors"] == 0, summary["last_errors"]
    expected_ticks = math.floor((recorded.end_s - recorded.start_s - WINDOW_S) / INTERVAL_S) + 1
    assert summary["ticks"] == expected_ticks
    rows = list(csv.DictReader((tmp_path / "timeline.csv").read_text().splitlines()))
    assert len(rows) == expected_ticks * len(recorded.tiers)
    for tier in recorded.tiers:
        mine = [r for r in rows if r["tier_key"] == tier.key]
        assert all(r["reason"] not in ("HoldStaleMetrics", "") for r in mine), mine[:3]
        assert all(float(r["actual_replicas"]) == REPLICAS[tier.name] for r in mine)
        s = next(x for x in summary["tiers"] if x["tier_key"] == tier.key)
        assert s["gpu_hours_actual"] == pytest.approx(
            REPLICAS[tier.name] * s["compared_ticks"] * INTERVAL_S / 3600.0
        )
    gold = [r for r in rows if r["tier_key"].endswith("/gold")]
    low = [int(r["desired_replicas"]) for r in gold if float(r["at_s"]) < recorded.high_from_s]
    high = [
        int(r["desired_replicas"])
        for r in gold
        if float(r["at_s"]) > recorded.high_from_s + WINDOW_S
    ]
    assert low and high
    assert max(high) > min(low), (low, high)
    for name in ("replicas.png", "latency.png", "gpu_hours.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_range_queries_give_the_live_adapter_numbers(recorded: Recorded) -> None:
    """Each tick's inputs read through `RangeTransport` equal an instant read at that time."""
    start = recorded.start_s + WINDOW_S
    transport = history.RangeTransport(
        ApiClientTransport(recorded.prometheus.url), start, recorded.end_s, INTERVAL_S
    )
    common = {
        "window_s": WINDOW_S,
        "stale_after_s": STALE_AFTER_S,
        "rate_history_s": 0.0,
        "history_step_s": INTERVAL_S,
    }
    ranged = PrometheusMetrics(recorded.prometheus.url, transport=transport, **common)
    live = PrometheusMetrics(recorded.prometheus.url, **common)
    times = transport.grid()[:: max(1, len(transport.grid()) // 5)]
    for at_s in times:
        assert ranged.read(recorded.tiers, at_s) == live.read(recorded.tiers, at_s), at_s
    assert ranged.errors_total == live.errors_total == 0
    assert transport.range_requests == 14  # one per input, whatever the number of ticks


def test_bad_input_is_a_clear_error(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _backtest(recorded, tmp_path, "--to", "2999-01-01T00:00:00Z") == 2
    assert "in the future" in capsys.readouterr().err
    code = main(["backtest", "--prometheus", "x", "--from", "yesterday", "--tiers", "t.yaml"])
    assert code == 2
    assert "expected unix seconds, RFC 3339" in capsys.readouterr().err
