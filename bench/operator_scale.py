"""Benchmark (not a test): `tierscale run` at scale on a kwok cluster of its own.

500 SLOTiers over 100 served models (5 tiers each), 500 Deployments of 10 replicas: 5,000
kwok pods on 50 fake GPU nodes. The operator is the real process (`python -m
tierscale.cli run`) with production timing (15 s decisions), against the real API server,
a real Prometheus and the real Envoy validation of the routing ConfigMap. Prometheus
scrapes a synthetic exporter that plays Envoy's per-route counters and vLLM's per-pool
histograms for every tier and pool (one series set per pool: the operator sums pods per
Deployment anyway), at rates chosen so each pool needs about 10 replicas.

Measured (written to --out as JSON and printed as a table):
- time per round: how long after a 15 s round starts the last of the 100 groups is
  decided, and the operator's CPU seconds per round (its process and its `envoy
  --mode validate` children): "every model decided within one interval on one core";
- the operator's resident memory (VmRSS), peak and steady;
- Kubernetes API requests per group tick (`tierscale_kubernetes_requests_total`);
- reaction time: one tier's rate x3 at a known instant -> the /scale request for its pool
  (from the decision log), against the scrape interval and the metrics window.

Run: `.venv/bin/python bench/operator_scale.py --out docs/bench/operator-scale.json`
(about 15 minutes on 2 shared cores, most of it creating 5,000 pods). Smaller:
`--models 10 --replicas 2` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from tierscale_testbed.cluster import Cluster, ClusterConfig, running_cluster
from tierscale_testbed.envoy import envoy_binary, free_port
from tierscale_testbed.operator import metric_values
from tierscale_testbed.prometheus import PROMETHEUS_BINARY
from tierscale_testbed.simvllm import manifests

from tierscale.adapters.envoy import routing, xds
from tierscale.domain import vllm
from tierscale.loop import naming
from tierscale_predictor import capacity, latency, profiles

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"
PROFILE = "llama-3.1-8b-h100"
SLOS = ((0.5, 0.05), (1.0, 0.075), (2.0, 0.1), (5.0, 0.2), (10.0, 0.5))
"""(TTFT s, TPOT s) of the 5 tiers of each model, tightest first (on histogram edges)."""
PROMPT_TOKENS, OUTPUT_TOKENS = 2000.0, 200.0
INTERVAL_S, WINDOW_S, SCRAPE_S = 15.0, 30.0, 5.0
PODS_PER_NODE = 110


# ----------------------------------------------------------------------------- synthetic


@dataclass
class Series:
    """One pool's synthetic traffic: requests finish at `rate_rps` from `since_s` on."""

    namespace: str
    deployment: str
    route: str
    rate_rps: float
    count: float = 0.0
    at_s: float = field(default_factory=time.time)

    def advance(self, now_s: float) -> None:
        self.count += self.rate_rps * max(now_s - self.at_s, 0.0)
        self.at_s = now_s


class SyntheticExporter(ThreadingHTTPServer):
    """Envoy's route counters and vLLM's histograms for every pool, in text format 0.0.4."""

    daemon_threads = True

    def __init__(self, series: list[Series]) -> None:
        super().__init__(("127.0.0.1", 0), _Metrics)
        self.series = series
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> SyntheticExporter:
        self._thread.start()
        return self

    def set_rate(self, route: str, rate_rps: float) -> float:
        with self.lock:
            now = time.time()
            for s in self.series:
                if s.route == route:
                    s.advance(now)
                    s.rate_rps = rate_rps
            return now

    def render(self) -> str:
        lines: list[str] = []
        now = time.time()
        with self.lock:
            for s in self.series:
                s.advance(now)
            snapshot = [
                (s.namespace, s.deployment, s.route, s.count, s.rate_rps) for s in self.series
            ]
        token_buckets = vllm.one_two_five_buckets(vllm.DEFAULT_MAX_MODEL_LEN)
        for namespace, deployment, route, count, rate in snapshot:
            lines.append(
                f'envoy_vhost_route_upstream_rq_total{{envoy_route="{route}"}} {count:.1f}'
            )
            pod = f'namespace="{namespace}",pod="{deployment}-synth-abcde",model_name="m"'
            for name, bounds, value in (
                (vllm.TTFT, vllm.TTFT_BUCKETS_S, 0.15),
                (vllm.TPOT, vllm.ITL_BUCKETS_S, 0.02),
                (vllm.REQUEST_PROMPT_TOKENS, token_buckets, PROMPT_TOKENS),
                (vllm.REQUEST_GENERATION_TOKENS, token_buckets, OUTPUT_TOKENS),
            ):
                for bound in bounds:
                    at_or_below = count if value <= bound else 0.0
                    lines.append(f'{name}_bucket{{{pod},le="{bound:g}"}} {at_or_below:.1f}')
                lines.append(f'{name}_bucket{{{pod},le="+Inf"}} {count:.1f}')
                lines.append(f"{name}_sum{{{pod}}} {count * value:.3f}")
                lines.append(f"{name}_count{{{pod}}} {count:.1f}")
            lines.append(
                f'{vllm.REQUEST_SUCCESS}_total{{{pod},finished_reason="length"}} {count:.1f}'
            )
            lines.append(f"{vllm.RUNNING}{{{pod}}} {rate * 1.5:.2f}")
            lines.append(f"{vllm.WAITING}{{{pod}}} 0")
            lines.append(f"{vllm.KV_USAGE}{{{pod}}} 0.3")
        return "\n".join(lines) + "\n"


class _Metrics(BaseHTTPRequestHandler):
    server: SyntheticExporter

    def do_GET(self) -> None:
        body = self.server.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def start_prometheus(root: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S:g}s", "scrape_timeout": f"{SCRAPE_S:g}s"},
        "scrape_configs": [
            {
                "job_name": "synthetic",
                "honor_labels": True,
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (root / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [
            str(PROMETHEUS_BINARY),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait(lambda: _ok(url + "/-/ready"), 30, "Prometheus ready")
    return proc, url


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait(check: Any, timeout_s: float, what: str, poll_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s:g} s: {what}")


# ----------------------------------------------------------------------------- the fleet


def fleet(
    models: int, replicas: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Series]]:
    """(Deployments, SLOTiers, synthetic series): each pool's rate needs ~`replicas`."""
    model = latency.LatencyModel.from_profile(profiles.load_profile(PROFILE))
    shape = latency.WorkloadShape(PROMPT_TOKENS, OUTPUT_TOKENS)
    deployments, tiers, series = [], [], []
    for m in range(models):
        served = f"model-{m:03d}"
        for t, (ttft, tpot) in enumerate(SLOS):
            name = f"m{m:03d}-t{t}"
            per_replica = capacity.max_rate_rps(model, latency.SloTarget(ttft, tpot), shape)
            doc = manifests.vllm_deployment(
                name, NAMESPACE, tier=name, replicas=replicas, model_name=served, cold_start_s=1
            )
            deployments.append(doc)
            tiers.append(
                {
                    "apiVersion": "tierscale.dev/v1alpha1",
                    "kind": "SLOTier",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {
                        "model": served,
                        "slo": {"ttft": f"{ttft:g}s", "tpot": f"{tpot * 1000:g}ms"},
                        "priority": 10 - t,
                        "pool": {
                            "deployment": name,
                            "minReplicas": max(1, replicas // 2),
                            "maxReplicas": replicas * 2,
                        },
                        "spillover": {"borrow": False, "lend": False},
                        "scaling": {"coldStart": "60s", "scaleDownStabilization": "300s"},
                    },
                }
            )
            series.append(
                Series(
                    NAMESPACE,
                    name,
                    naming.tier_stat_name(NAMESPACE, name),
                    0.85 * replicas * per_replica,
                )
            )
    return deployments, tiers, series


def create_all(cluster: Cluster, docs: list[dict[str, Any]]) -> None:
    """One POST per object (`kubectl apply` of hundreds of objects timed out on the busy
    API server: it reads each object first and diffs client-side)."""
    api = cluster.api_client()
    try:
        apps, custom = k8s.AppsV1Api(api), k8s.CustomObjectsApi(api)
        for doc in docs:
            if doc["kind"] == "Deployment":
                apps.create_namespaced_deployment(NAMESPACE, doc, _request_timeout=60)
            else:
                group, version = doc["apiVersion"].split("/")
                custom.create_namespaced_custom_object(
                    group, version, NAMESPACE, "slotiers", doc, _request_timeout=60
                )
    finally:
        api.close()  # type: ignore[no-untyped-call]


def ready_pods(cluster: Cluster) -> int:
    items = cluster.get_json("deployments", "-n", NAMESPACE)["items"]
    return sum(int(d.get("status", {}).get("readyReplicas") or 0) for d in items)


# ----------------------------------------------------------------------------- measuring


def proc_stats(pid: int) -> tuple[float, float, float]:
    """(RSS MB, own CPU s, children's CPU s) of a process, from /proc."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return rss_kb / 1024.0, own, children


def decisions(log_path: Path) -> Iterator[dict[str, Any]]:
    for raw in log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{") and '"message":"decision"' in raw:
            yield json.loads(raw)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument(
        "--steady-s",
        type=float,
        default=120.0,
        help="measured steady state after the first full round",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tiers_count = args.models * len(SLOS)
    pods = tiers_count * args.replicas
    nodes = max(1, -(-pods // (PODS_PER_NODE - 10)))
    work = Path(f"/tmp/tierscale-bench-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "models": args.models,
        "tiers": tiers_count,
        "pods_requested": pods,
        "nodes": nodes,
        "interval_s": INTERVAL_S,
        "window_s": WINDOW_S,
        "scrape_s": SCRAPE_S,
        "machine": f"{platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
    }
    config = ClusterConfig(
        gpu_nodes=nodes,
        gpus_per_node=PODS_PER_NODE,
        default_cold_start_s=1.0,
        ready_timeout_s=600.0,
    )
    with running_cluster(config) as cluster:
        cluster.kubectl("apply", "-f", str(REPO / "crds"))
        wait(
            lambda: all(
                any(
                    c["type"] == "Established" and c["status"] == "True"
                    for c in cluster.get_json("crd", n).get("status", {}).get("conditions") or []
                )
                for n in ("slotiers.tierscale.dev", "kopfpeerings.kopf.dev")
            ),
            60,
            "CRDs",
        )
        cluster.create_namespace(NAMESPACE)
        deployments, slotiers, series = fleet(args.models, args.replicas)
        started = time.monotonic()
        create_all(cluster, deployments)
        wait(lambda: ready_pods(cluster) >= pods, 3600, f"{pods} pods Ready", poll_s=5.0)
        result["pods_ready_after_s"] = round(time.monotonic() - started, 1)
        print(f"{pods} pods Ready after {result['pods_ready_after_s']} s", flush=True)

        exporter = SyntheticExporter(series).start()
        prometheus, prometheus_url = start_prometheus(
            work / "prometheus", f"127.0.0.1:{exporter.server_address[1]}"
        )
        layout = xds.XdsLayout(
            "/etc/envoy/xds/lds",
            "/etc/envoy/xds/cds",
            "/etc/envoy/xds/rds",
            rtds_dir="/etc/envoy/xds/rtds",
        )
        empty = xds.render(routing.RoutingTable((), ()), layout, xds.ListenerSettings())
        cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "tierscale-envoy", "namespace": NAMESPACE},
                    "data": empty.files(),
                }
            ]
        )
        create_all(cluster, slotiers)
        time.sleep(WINDOW_S + 2 * SCRAPE_S)  # every rate window filled before the first tick

        port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "TIERSCALE_NAMESPACES": NAMESPACE,
            "TIERSCALE_OPERATOR_NAMESPACE": NAMESPACE,
            "TIERSCALE_CONTROL_INTERVAL_S": f"{INTERVAL_S:g}",
            "TIERSCALE_METRICS_WINDOW_S": f"{WINDOW_S:g}",
            "TIERSCALE_STALE_AFTER_S": "60",
            "TIERSCALE_RATE_HISTORY_S": "300",
            "TIERSCALE_PROMETHEUS_URL": prometheus_url,
            "TIERSCALE_ENVOY_CONFIGMAP": f"{NAMESPACE}/tierscale-envoy",
            "TIERSCALE_ENVOY_SETTLE_S": "0",
            "TIERSCALE_ENVOY_BINARY": str(envoy_binary()),
            "TIERSCALE_METRICS_PORT": str(port),
            "TIERSCALE_LOG_FORMAT": "json",
        }
        log_path = work / "operator.log"
        with log_path.open("ab") as log:
            operator = subprocess.Popen(
                [sys.executable, "-m", "tierscale.cli", "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            measure(operator, port, log_path, exporter, series, args, result)
        finally:
            operator.terminate()
            operator.wait(timeout=60)
            prometheus.terminate()
            prometheus.wait(timeout=30)
            exporter.shutdown()
        result["pods_at_end"] = ready_pods(cluster)
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def measure(
    operator: subprocess.Popen[bytes],
    port: int,
    log_path: Path,
    exporter: SyntheticExporter,
    series: list[Series],
    args: argparse.Namespace,
    result: dict[str, Any],
) -> None:
    groups = args.models
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    samples: list[tuple[float, float, float, float]] = []  # (t, rss MB, own cpu, child cpu)

    def sample() -> None:
        samples.append((time.time(), *proc_stats(operator.pid)))

    def decided() -> set[str]:
        return {d["model"] for d in decisions(log_path)}

    t0 = time.time()
    while len(decided()) < groups:
        if operator.poll() is not None:
            raise RuntimeError(f"operator exited {operator.returncode}; see {log_path}")
        sample()
        time.sleep(1.0)
    result["first_round_complete_after_start_s"] = round(time.time() - t0, 1)
    requests_before = _requests(metrics_url)
    ticks_before = len(list(decisions(log_path)))
    steady_from = time.time()
    # The step: the loosest tier of model 0 goes x3, mid-steady-state.
    step_route = series[len(SLOS) - 1].route
    step_pool = f"{NAMESPACE}/{series[len(SLOS) - 1].deployment}"
    step_at: float | None = None
    while time.time() - steady_from < args.steady_s:
        sample()
        if step_at is None and time.time() - steady_from > args.steady_s / 3:
            step_at = exporter.set_rate(step_route, series[len(SLOS) - 1].rate_rps * 3)
        time.sleep(1.0)
    steady_to = time.time()
    lines = [d for d in decisions(log_path) if steady_from <= _at(d) < steady_to]
    requests = _requests(metrics_url) - requests_before
    ticks = len(list(decisions(log_path))) - ticks_before
    # Rounds: each group's decisions, split into 15 s slots since the first steady decision.
    slot_spread = []
    by_slot: dict[int, list[float]] = {}
    for d in lines:
        slot = int((_at(d) - steady_from) // INTERVAL_S)
        by_slot.setdefault(slot, []).append(_at(d))
    for slot, times in sorted(by_slot.items()):
        if len(times) >= groups * 0.9:
            slot_spread.append(max(times) - (steady_from + slot * INTERVAL_S))
    steady = [s for s in samples if s[0] >= steady_from]
    cpu_own = steady[-1][2] - steady[0][2]
    cpu_children = steady[-1][3] - steady[0][3]
    span = steady[-1][0] - steady[0][0]
    tick_s = [float(d["tick_s"]) for d in lines]
    plan_s = [float(d["plan_s"]) for d in lines if d.get("plan_s") is not None]
    scaled = [
        d
        for d in decisions(log_path)
        if step_at is not None
        and _at(d) >= step_at
        and d.get("scaled", {}).get(step_pool) == "Scaled"
    ]
    result.update(
        {
            "steady_s": round(span, 1),
            "group_ticks_in_steady_state": ticks,
            "decisions_per_interval": round(len(lines) / (span / INTERVAL_S), 1),
            "last_group_decided_s_into_round_max": round(max(slot_spread), 2)
            if slot_spread
            else None,
            "tick_s_median": round(statistics.median(tick_s), 3) if tick_s else None,
            "tick_s_p95": round(sorted(tick_s)[int(0.95 * (len(tick_s) - 1))], 3)
            if tick_s
            else None,
            "plan_s_median": round(statistics.median(plan_s), 4) if plan_s else None,
            "cpu_s_per_interval_operator": round(cpu_own / span * INTERVAL_S, 2),
            "cpu_s_per_interval_envoy_validate": round(cpu_children / span * INTERVAL_S, 2),
            "rss_mb_peak": round(max(s[1] for s in samples), 1),
            "rss_mb_steady_median": round(statistics.median(s[1] for s in steady), 1),
            "kubernetes_requests_per_group_tick": round(requests / max(ticks, 1), 2),
            "step_to_scale_request_s": round(_at(scaled[0]) - step_at, 1) if scaled else None,
        }
    )


def _at(line: dict[str, Any]) -> float:
    return float(str(line["record_id"]).rpartition("@")[2])


def _requests(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(v for _, v in metric_values(text, "tierscale_kubernetes_requests_total"))


if __name__ == "__main__":
    sys.exit(main())
