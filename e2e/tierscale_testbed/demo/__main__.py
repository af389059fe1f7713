"""`make demo`: tierscale scaling a live testbed cluster through a compressed day.

1. starts the testbed: a real kube-apiserver, etcd, scheduler and controller-manager with
   kwok GPU nodes, the simulated vLLM server, Envoy and Prometheus (all local processes);
2. installs the Helm chart (CRDs, RBAC, recording rules, dashboards) into the cluster.
   kwok runs no containers, so the operator runs here as a local process with the
   chart's ServiceAccount token, and the chart's Deployment stays at zero replicas;
3. applies three SLOTiers and their vLLM Deployments, starts the operator;
4. sends a compressed day of traffic through Envoy (a ramp, a burst, a tier-mix shift,
   the evening), one load generator per tier, and shows a live view of every tier;
5. reads the run back from Prometheus, renders the dashboards' previews, tears the
   testbed down (also on Ctrl-C), runs the fleet simulator on the same day and policy,
   and writes plots and a summary to `--out` (default out/demo).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from kubernetes import client
from rich.console import Console
from rich.live import Live

from tierscale_testbed import chart, dashboard_preview
from tierscale_testbed.cluster import Cluster, ClusterConfig, running_cluster
from tierscale_testbed.demo import live, results, sim_compare, traffic
from tierscale_testbed.envoy import TestbedEnvoy
from tierscale_testbed.operator import BackgroundLoad, OperatorProcess, testbed_settings
from tierscale_testbed.prometheus import TestbedPrometheus
from tierscale_testbed.simvllm import manifests, process

NAMESPACE = "tierscale-demo"
RELEASE = "tierscale"
ENVOY_CONFIGMAP = "tierscale-envoy"
OPERATOR_SETTINGS = {
    "TIERSCALE_CONTROL_INTERVAL_S": "2",
    "TIERSCALE_RATE_HISTORY_S": "20",
    "TIERSCALE_STALE_AFTER_S": "10",
}
"""Compressed time (the rest is the testbed's, `operator.FAST_SETTINGS`): a decision every
2 s on 10 s windows, 20 s of rate history (15 minutes in production, compressed like the
day)."""
REFRESH_S = 1.0

console = Console(highlight=False)


def say(text: str) -> None:
    console.print(f"[bold cyan]demo[/bold cyan] {text}")


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tierscale_testbed.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument(
        "--no-live", action="store_true", help="print a line per phase instead of the live view"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    # Absolute: the operator's Envoy endpoint directory (`eds:` + a path) must be one.
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        return run(
            args.out,
            live_view=not args.no_live and console.is_terminal,
            seed=args.seed,
            started=started,
        )
    except KeyboardInterrupt:
        say("[yellow]interrupted: everything this demo started has been stopped[/yellow]")
        return 130


def run(out: Path, *, live_view: bool, seed: int, started: float) -> int:
    tiers = [t.name for t in traffic.TIERS]
    work = out / "run"
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        say(
            "starting the testbed: kube-apiserver, etcd, scheduler, controller-manager and "
            "kwok with 8 fake GPU nodes (8 GPUs each)"
        )
        cluster = stack.enter_context(
            running_cluster(replace(ClusterConfig.from_env(), default_cold_start_s=5.0))
        )
        say(f"  cluster up ({time.monotonic() - started:.0f} s); simulated vLLM, Envoy, Prometheus")
        discovery = work / "simvllm"
        discovery.mkdir(exist_ok=True)
        simvllm = stack.enter_context(
            process.running(
                cluster.kubeconfig,
                discovery,
                work / "simvllm.log",
                extra_args=("--drain-timeout-s", "30"),
            )
        )
        envoy = stack.enter_context(_envoy(cluster, discovery, work))
        prometheus = stack.enter_context(
            TestbedPrometheus(
                work / "prometheus",
                discovery,
                envoy_admin=envoy.process.admin_url.removeprefix("http://"),
            )
        )
        say("installing the Helm chart: CRDs, RBAC, recording rules, dashboards")
        cluster.create_namespace(NAMESPACE)
        release = chart.install(
            cluster,
            RELEASE,
            NAMESPACE,
            {
                "settings.namespaces": [NAMESPACE],
                "settings.envoyConfigmap": f"{envoy.namespace}/{envoy.configmap_name}",
                "envoy.configMap.create": False,  # the testbed's Envoy created it
            },
        )
        say(
            "kwok runs no containers: the operator runs here as a local process with the "
            "chart's ServiceAccount token; the chart's Deployment stays at 0 replicas"
        )
        kubeconfig = chart.service_account_kubeconfig(
            cluster, release, work / "operator.kubeconfig"
        )
        say(f"  operator credentials: {chart.whoami(cluster, kubeconfig)}")
        _apply_tiers(cluster, simvllm)
        env = {
            **testbed_settings(kubeconfig, NAMESPACE, prometheus, envoy),
            **OPERATOR_SETTINGS,
        }
        operator = OperatorProcess(work, env, name="operator")
        prometheus.set_operator_targets([f"127.0.0.1:{operator.port}"], {"namespace": NAMESPACE})
        operator.start()
        stack.callback(operator.stop)
        say(
            f"operator running (log {operator.log_path}); sending a compressed day of "
            f"{traffic.duration_s() / 60:.0f} minutes through Envoy"
        )
        day_start = time.time()
        loads = {
            tier: BackgroundLoad(
                envoy.listener_url,
                work / f"load-{tier}.json",
                *traffic.loadgen_args(tier, seed + i),
                *("--slo", _slo_arg(tier)),
            )
            for i, tier in enumerate(tiers)
        }
        for load in loads.values():
            stack.callback(load.stop)
        _watch(operator, live_view, day_start)
        summaries = {tier: load.finish(timeout_s=120) for tier, load in loads.items()}
        day_end = time.time()
        say("day over: reading the run back from Prometheus")
        time.sleep(3.0)  # the last scrapes
        window = results.Window(prometheus.url, NAMESPACE, day_start, day_end)
        data = results.collect(window)
        _previews(prometheus.url, day_start, day_end, out / "dashboards")
        live_wall_s = time.monotonic() - started
        say("tearing the testbed down")
    say("running the fleet simulator on the same day, tiers and policy")
    sim = sim_compare.run(
        work,
        control_interval_s=float(OPERATOR_SETTINGS["TIERSCALE_CONTROL_INTERVAL_S"]),
        metrics_window_s=10.0,
        rate_history_s=float(OPERATOR_SETTINGS["TIERSCALE_RATE_HISTORY_S"]),
    )
    clients = results.client_attainment(summaries)
    extra = {
        "description": (
            f"{len(tiers)} tiers of {traffic.MODEL}, {traffic.duration_s() / 60:.0f}-minute "
            f"compressed day ({', '.join(p.name for p in traffic.DAY)}), "
            f"{traffic.PROMPT_TOKENS}-token prompts, {traffic.OUTPUT_TOKENS} output tokens"
        ),
        "demo_wall_s": round(time.monotonic() - started, 1),
        "live_part_wall_s": round(live_wall_s, 1),
        "operator_decisions": len(operator.decisions()),
    }
    plots = results.plot(data, tiers, sim, out)
    doc, text = results.summary(data, tiers, clients, sim, extra)
    (out / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "summary.md").write_text(text)
    console.print(text)
    say(f"wrote {', '.join(str(p) for p in plots)}, {out / 'summary.md'}, {out / 'dashboards'}/")
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


def _slo_arg(tier: str) -> str:
    spec = next(t for t in traffic.TIERS if t.name == tier)
    return f"{tier}={_seconds(spec.ttft):g}:{_seconds(spec.tpot):g}"


def _seconds(text: str) -> float:
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


@contextlib.contextmanager
def _envoy(cluster: Cluster, discovery: Path, work: Path) -> Iterator[TestbedEnvoy]:
    namespace = cluster.create_namespace(f"tierscale-dataplane-{secrets.token_hex(3)}")
    api_client = cluster.api_client()
    envoy = TestbedEnvoy(work / "envoy", api_client, namespace, ENVOY_CONFIGMAP, discovery)
    client.CoreV1Api(api_client).create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=ENVOY_CONFIGMAP),
            data=envoy.initial_configmap_data(),
        ),
    )
    envoy.start()
    try:
        yield envoy
    finally:
        envoy.stop()
        api_client.close()  # type: ignore[no-untyped-call]


def _apply_tiers(cluster: Cluster, simvllm: process.SimVllmProcess) -> None:
    say("applying 3 SLOTiers and their vLLM Deployments (1 replica each to start)")
    cluster.apply(
        [
            manifests.vllm_deployment(
                t.name, NAMESPACE, tier=t.name, replicas=1, cold_start_s=traffic.COLD_START_S
            )
            for t in traffic.TIERS
        ]
    )
    for t in traffic.TIERS:
        simvllm.wait_for_serving(NAMESPACE, t.name, 1, timeout_s=90)
    cluster.apply(
        [
            {
                "apiVersion": "tierscale.dev/v1alpha1",
                "kind": "SLOTier",
                "metadata": {"name": t.name, "namespace": NAMESPACE},
                "spec": t.slotier_spec(),
            }
            for t in traffic.TIERS
        ]
    )


def _watch(operator: OperatorProcess, live_view: bool, day_start: float) -> None:
    log = live.DecisionLog(operator.log_path)
    keys = [f"{NAMESPACE}/{t.name}" for t in traffic.TIERS]
    total = traffic.duration_s()
    schedule = traffic.steps()

    def frame() -> Any:
        elapsed = time.time() - day_start
        log.poll()
        try:
            metrics = live.parse_metrics(operator.metrics_text())
        except RuntimeError:
            metrics = {}
        offered = next(
            (r for start, _, r in reversed(schedule) if start <= elapsed), schedule[0][2]
        )
        return live.view(
            title="tierscale live demo",
            phase=traffic.phase_at(elapsed),
            elapsed_s=min(elapsed, total),
            total_s=total,
            offered_rps=offered,
            tier_keys=keys,
            log=log,
            metrics=metrics,
        )

    if live_view:
        with Live(frame(), console=console, refresh_per_second=2) as screen:
            while time.time() - day_start < total:
                time.sleep(REFRESH_S)
                screen.update(frame())
        return
    phase = ""
    while time.time() - day_start < total:
        now_phase = traffic.phase_at(time.time() - day_start)
        if now_phase != phase:
            phase = now_phase
            say(f"  {time.time() - day_start:5.0f} s: {phase}")
        time.sleep(REFRESH_S)
    log.poll()
    for key in keys:
        entry = log.last_by_tier.get(key, {})
        say(
            f"  {key}: desired {entry.get('desired')} ready {entry.get('ready')} "
            f"reason {entry.get('reason')}"
        )


def _previews(prometheus_url: str, start_s: float, end_s: float, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(chart.CHART_DIR.glob("dashboards/*.json")):
        title, panels = dashboard_preview.load(path)
        got = dashboard_preview.run(prometheus_url, panels, start_s, end_s)
        dashboard_preview.render(title, got, start_s, out / f"{path.stem}.png")
        empty = [r.panel.title for r in got if not r.has_data]
        if empty:
            say(f"  [yellow]{path.stem}: no data for {', '.join(empty)}[/yellow]")


if __name__ == "__main__":
    sys.exit(main())
