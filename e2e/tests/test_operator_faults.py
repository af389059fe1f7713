"""The operator under faults, on the testbed: each fault with the behaviour it must show.

Every test runs `tierscale run` as a real process against the real API server,
Prometheus, Envoy and the simulated vLLM pods, in its own namespace, on compressed time
(1 s decisions). Timing bounds are generous; what is asserted is what was written (or
not) and what the operator's status and decision log say.
"""

from __future__ import annotations

import http.client
import secrets
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy, TierClient
from tierscale_testbed.kwok_config import gpu_node
from tierscale_testbed.operator import (
    BackgroundLoad,
    condition,
    decision_time,
    deploy,
    load_args,
    metric_values,
    slotier,
    spec_replicas,
    tier_of,
    wait_for_tier,
    wait_until,
)
from tierscale_testbed.prometheus import TestbedPrometheus, render_config
from tierscale_testbed.pytest_operator import Operators
from tierscale_testbed.simvllm import manifests
from tierscale_testbed.simvllm.process import SimVllmProcess

from tierscale.adapters.envoy import routing
from tierscale.adapters.kubernetes.names import RESUME_ANNOTATION

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INTERVAL_S = 1.0
HOLD = "HoldStaleMetrics"


def _acting(entry: dict[str, Any]) -> bool:
    return bool(entry.get("reason")) and entry["reason"] != HOLD


def _decisions_between(
    operator: Any, namespace: str, name: str, start_s: float, end_s: float
) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """(time, tier entry, whole line) of the decisions in [start_s, end_s)."""
    return [
        (decision_time(d), tier_of(d, namespace, name), d)
        for d in operator.decisions()
        if start_s <= decision_time(d) < end_s
    ]


def test_prometheus_stopped_or_stale_holds_the_tier_and_resumes(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    simvllm_discovery_dir: Path,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    """A private Prometheus, so stopping it disturbs no other test."""
    admin = envoy.process.admin_url.removeprefix("http://")
    private = TestbedPrometheus(tmp_path / "prometheus", simvllm_discovery_dir, envoy_admin=admin)
    private.start()
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 1},
        [slotier("silver", namespace, deployment="silver", max_replicas=3)],
    )
    load = BackgroundLoad(
        envoy.listener_url, tmp_path / "load.json", *load_args("poisson:2", 120, "silver=1")
    )
    try:
        operator = operators.start(TIERSCALE_PROMETHEUS_URL=private.url)
        wait_for_tier(operator, namespace, "silver", _acting, 40, "a decision on fresh metrics")

        # Prometheus stopped: Hold within two intervals, and nothing scaled while held.
        replicas_before = spec_replicas(cluster, namespace, "silver")[0]
        stopped_at = time.time()
        private.stop()
        held_at, held = wait_for_tier(
            operator,
            namespace,
            "silver",
            lambda e: e["reason"] == HOLD,
            20,
            "Hold",
            after_s=stopped_at,
        )
        print(f"held {held_at - stopped_at:.1f} s after Prometheus stopped: {held['message']}")
        assert held_at - stopped_at <= 2 * INTERVAL_S + 1.5
        wait_until(
            lambda: (
                True
                if condition(cluster.get_json("slotier", "silver", "-n", namespace), "Hold").get(
                    "status"
                )
                == "True"
                else None
            ),
            10,
            "the Hold condition",
        )
        time.sleep(4 * INTERVAL_S)
        private.start()  # same address, same TSDB
        restarted_at = time.time()
        wait_for_tier(
            operator, namespace, "silver", _acting, 30, "acting again", after_s=restarted_at
        )
        during = _decisions_between(operator, namespace, "silver", held_at, restarted_at)
        assert during and all(e["reason"] == HOLD for _, e, _ in during)
        assert all(line["scaled"].get(f"{namespace}/silver") != "Scaled" for _, _, line in during)
        assert spec_replicas(cluster, namespace, "silver")[0] == replicas_before

        # Stale series: Envoy no longer scraped (its series go stale), then scraped again.
        config = render_config(private.vllm_file_sd, None, private.operator_file_sd)
        private.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        urllib.request.urlopen(
            urllib.request.Request(private.url + "/-/reload", method="POST"), timeout=10
        ).close()
        stale_at = time.time()
        wait_for_tier(
            operator,
            namespace,
            "silver",
            lambda e: e["reason"] == HOLD,
            30,
            "Hold on stale series",
            after_s=stale_at,
        )
        config = render_config(private.vllm_file_sd, admin, private.operator_file_sd)
        private.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        urllib.request.urlopen(
            urllib.request.Request(private.url + "/-/reload", method="POST"), timeout=10
        ).close()
        back_at = time.time()
        wait_for_tier(
            operator, namespace, "silver", _acting, 30, "acting on fresh series", after_s=back_at
        )
    finally:
        load.stop()
        private.stop()


def test_a_409_from_a_concurrent_writer_never_double_scales(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 1},
        [slotier("silver", namespace, deployment="silver", max_replicas=4)],
    )
    load = BackgroundLoad(
        envoy.listener_url, tmp_path / "load.json", *load_args("poisson:1", 90, "silver=1")
    )
    api = cluster.api_client()
    apps = client.AppsV1Api(api)
    stop = threading.Event()
    seen: list[int] = []

    def concurrent_writer() -> None:
        """Another controller touching the Deployment (not its replicas) all the time."""
        n = 0
        while not stop.is_set():
            n += 1
            apps.patch_namespaced_deployment(
                "silver",
                namespace,
                {"metadata": {"annotations": {"example.com/tick": str(n)}}},
                field_manager="another-controller",
            )
            seen.append(int(apps.read_namespaced_deployment("silver", namespace).spec.replicas))
            time.sleep(0.02)

    try:
        operator = operators.start()
        wait_for_tier(operator, namespace, "silver", _acting, 40, "a first decision")
        writer = threading.Thread(target=concurrent_writer, daemon=True)
        writer.start()
        cluster.kubectl(
            "patch",
            "slotier",
            "silver",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec":{"pool":{"minReplicas":3}}}',
        )
        wanted_at = time.time()
        time.sleep(6)
        stop.set()
        writer.join(timeout=10)
        wait_until(
            lambda: True if spec_replicas(cluster, namespace, "silver")[0] == 3 else None,
            30,
            "silver at 3 replicas after the writer stopped",
        )
        lines = _decisions_between(operator, namespace, "silver", wanted_at, time.time())
        outcomes = [line["scaled"].get(f"{namespace}/silver") for _, _, line in lines]
        print("scale outcomes:", outcomes)
        assert "Conflict" in outcomes, "the concurrent writer's changes must have drawn a 409"
        assert max(seen) <= 3, f"replicas went above the decision: {max(seen)}"
        assert all(e["desired"] <= 3 for _, e, _ in lines)
    finally:
        stop.set()
        load.stop()
        api.close()  # type: ignore[no-untyped-call]


def test_killed_mid_scale_the_restarted_operator_converges_and_keeps_its_windows(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    window_s = 35.0
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 1},
        [
            slotier(
                "silver",
                namespace,
                deployment="silver",
                ttft="1s",
                tpot="75ms",
                max_replicas=4,
                stabilization=f"{window_s:g}s",
            )
        ],
    )
    heavy = BackgroundLoad(
        envoy.listener_url,
        tmp_path / "heavy.json",
        "--pattern",
        "poisson:9",
        "--prompt-tokens",
        "8000",
        "--output-tokens",
        "50",
        "--tier-mix",
        "silver=1",
        "--max-duration-s",
        "60",
        "--max-requests",
        "5000",
    )
    first = operators.start(name="first")
    try:
        up_at, up = wait_for_tier(
            first, namespace, "silver", lambda e: e["desired"] > 1, 60, "a scale-up"
        )
        wait_until(
            lambda: True if spec_replicas(cluster, namespace, "silver")[0] > 1 else None,
            10,
            "the scale-up written",
        )
        first.kill()  # mid-scale: the new replicas are still loading
        killed_at = time.time()
    finally:
        heavy.stop()
    light = BackgroundLoad(
        envoy.listener_url, tmp_path / "light.json", *load_args("poisson:1", 90, "silver=1")
    )
    try:
        # Restart only once the rate history (20 s) has forgotten the heavy load: whatever
        # holds the replicas now is the stabilisation window restored from saved state.
        time.sleep(22)
        restarted_at = time.time()
        second = operators.start(name="second")
        assert any(
            line.get("message") == "planner state loaded" for line in second.lines()
        ) or wait_until(
            lambda: (
                True
                if any(line.get("message") == "planner state loaded" for line in second.lines())
                else None
            ),
            20,
            "the planner state loaded from its ConfigMap",
        )
        down_at, down = wait_for_tier(
            second,
            namespace,
            "silver",
            lambda e: e["desired"] < (e["current"] or 0),
            60,
            "the scale-down",
            after_s=restarted_at,
        )
        print(f"scale-down {down_at - killed_at:.1f} s after the kill: {down['message']}")
        assert down_at >= killed_at + window_s - 2 * INTERVAL_S, "premature scale-down"
        held = _decisions_between(second, namespace, "silver", restarted_at, down_at)
        assert held and all(e["reason"] == "Stabilized" for _, e, _ in held), held[:3]
        # Converged: what the restarted operator decides is what runs.
        wait_until(
            lambda: (
                True
                if spec_replicas(cluster, namespace, "silver")[0]
                == tier_of(second.decisions()[-1], namespace, "silver")["desired"]
                else None
            ),
            30,
            "the Deployment at the decided replicas",
        )
    finally:
        light.stop()


def test_an_hpa_and_a_manual_scale_are_conflicts_without_flapping_until_removed(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 2},
        [slotier("silver", namespace, deployment="silver", max_replicas=4, min_replicas=2)],
    )
    load = BackgroundLoad(
        envoy.listener_url, tmp_path / "load.json", *load_args("poisson:1", 120, "silver=1")
    )
    try:
        operator = operators.start()
        wait_for_tier(operator, namespace, "silver", _acting, 40, "a first decision")

        def conflict(status: str) -> bool | None:
            body = cluster.get_json("slotier", "silver", "-n", namespace)
            return True if condition(body, "Conflict").get("status") == status else None

        def no_flapping(since_s: float, replicas: int) -> None:
            time.sleep(10 * INTERVAL_S)
            lines = _decisions_between(operator, namespace, "silver", since_s, time.time())
            assert len(lines) >= 8
            assert all(e["reason"] == "Conflict" for _, e, _ in lines), [
                e["reason"] for _, e, _ in lines
            ]
            assert all(
                line["scaled"].get(f"{namespace}/silver") != "Scaled" for _, _, line in lines
            )
            assert spec_replicas(cluster, namespace, "silver")[0] == replicas

        # An HPA on the managed Deployment: Conflict, hands off, until it is deleted.
        cluster.apply(
            [
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "silver", "namespace": namespace},
                    "spec": {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": "silver",
                        },
                        "minReplicas": 2,
                        "maxReplicas": 5,
                        "metrics": [
                            {
                                "type": "Resource",
                                "resource": {
                                    "name": "cpu",
                                    "target": {"type": "Utilization", "averageUtilization": 80},
                                },
                            }
                        ],
                    },
                }
            ]
        )
        wait_until(lambda: conflict("True"), 15, "Conflict on the HPA")
        cluster.kubectl(
            "patch",
            "slotier",
            "silver",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec":{"pool":{"minReplicas":3}}}',
        )
        no_flapping(time.time() + 1, 2)
        cluster.kubectl("delete", "hpa", "silver", "-n", namespace)
        wait_until(lambda: conflict("False"), 15, "the Conflict cleared after the HPA went")
        wait_until(
            lambda: True if spec_replicas(cluster, namespace, "silver")[0] == 3 else None,
            15,
            "the operator acting again (minReplicas 3)",
        )

        # A person's `kubectl scale`: Conflict until the replicas are handed back.
        cluster.kubectl("scale", "deployment", "silver", "-n", namespace, "--replicas=4")
        wait_until(lambda: conflict("True"), 15, "Conflict on the manual scale")
        no_flapping(time.time() + 1, 4)
        cluster.kubectl(
            "annotate",
            "deployment",
            "silver",
            "-n",
            namespace,
            "--overwrite",
            f"{RESUME_ANNOTATION}={int(time.time())}",
        )
        wait_until(lambda: conflict("False"), 15, "the Conflict cleared after the resume")
        wait_until(
            lambda: True if spec_replicas(cluster, namespace, "silver")[0] == 3 else None,
            30,
            "the operator back in charge (3 replicas)",
        )
    finally:
        load.stop()


def test_gpus_exhausted_keep_priority_order_and_request_nothing_more(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    """A node of its own with 3 GPUs, one taken by a workload tierscale does not manage;
    both tiers need 2 replicas, the budget is 3 GPUs: gold (higher priority, minReplicas 2)
    keeps its 2 while silver's breach guard asks for more, silver keeps its minimum 1, and
    gold's second pod stays Pending (the node is full).

    minReplicas, not the forecast, holds gold's second replica: where gold's present demand
    fits one replica, "margins come last" lets silver's present demand outrank gold's
    forecast margin (docs/planner.md), and gold's Pending replica lends nothing to silver."""
    product = f"TEST-GPU-{secrets.token_hex(3).upper()}"
    node = f"gpu-{namespace}"[:63]
    cluster.apply([gpu_node(node, 3, product)])
    selector = {"nvidia.com/gpu.product": product}
    docs = []
    for name in ("squatter", "gold", "silver"):
        doc = manifests.vllm_deployment(name, namespace, tier=name, replicas=1, cold_start_s=2)
        doc["spec"]["template"]["spec"]["nodeSelector"] = selector
        docs.append(doc)
    labels = docs[0]["spec"]["template"]["metadata"]["labels"]
    labels["app.kubernetes.io/component"] = "other"  # not a vLLM pod
    try:
        cluster.apply(docs)
        simvllm.wait_for_serving(namespace, "gold", 1, timeout_s=60)
        simvllm.wait_for_serving(namespace, "silver", 1, timeout_s=60)
        cluster.apply(
            [
                slotier(
                    "gold",
                    namespace,
                    deployment="gold",
                    priority=10,
                    min_replicas=2,
                    max_replicas=4,
                ),
                slotier("silver", namespace, deployment="silver", priority=0, max_replicas=4),
            ]
        )
        load = BackgroundLoad(
            envoy.listener_url,
            tmp_path / "load.json",
            "--pattern",
            "poisson:12",
            "--prompt-tokens",
            "5000",
            "--output-tokens",
            "50",
            "--tier-mix",
            "gold=0.45,silver=0.55",
            "--max-duration-s",
            "90",
        )
        try:
            operator = operators.start(TIERSCALE_GPU_BUDGET="3")
            wait_for_tier(
                operator,
                namespace,
                "silver",
                lambda e: e["reason"] == "BudgetLimited",
                60,
                "silver BudgetLimited",
            )
            since = time.time()
            time.sleep(10 * INTERVAL_S)
            lines = _decisions_between(operator, namespace, "gold", since, time.time())
            assert len(lines) >= 4, "decisions go on (one per interval on an idle machine)"
            for _, gold, line in lines:
                silver = tier_of(line, namespace, "silver")
                assert gold["desired"] + silver["desired"] <= 3, "never above the GPU budget"
                assert gold["desired"] >= 2 and silver["desired"] >= 1, (gold, silver)
            assert (
                condition(cluster.get_json("slotier", "silver", "-n", namespace), "BudgetLimited")[
                    "status"
                ]
                == "True"
            )
            assert (
                condition(
                    cluster.get_json("slotier", "gold", "-n", namespace), "BudgetLimited"
                ).get("status")
                == "False"
            ), "the higher priority is served first"
            pending = [
                p["metadata"]["name"]
                for p in cluster.get_json("pods", "-n", namespace)["items"]
                if p["status"].get("phase") == "Pending"
            ]
            assert pending, "the node is full: a pod must be Pending"
            replicas = {n: spec_replicas(cluster, namespace, n)[0] for n in ("gold", "silver")}
            assert sum(replicas.values()) <= 3, f"no runaway requests for GPUs: {replicas}"
        finally:
            load.stop()
    finally:
        cluster.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false")


def test_a_missing_deployment_or_a_shared_one_is_invalid_and_touches_nothing_else(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    deploy(
        cluster,
        simvllm,
        namespace,
        {"gold": 1, "silver": 1},
        [
            slotier("gold", namespace, deployment="gold", min_replicas=2),
            slotier("silver", namespace, deployment="silver"),
        ],
    )
    time.sleep(1.2)  # the copycat is younger than gold: gold owns the Deployment
    cluster.apply(
        [
            slotier("ghost", namespace, deployment="does-not-exist"),
            slotier("copycat", namespace, deployment="gold", min_replicas=3),
        ]
    )
    load = BackgroundLoad(
        envoy.listener_url,
        tmp_path / "load.json",
        *load_args("poisson:2", 60, "gold=0.5,silver=0.5"),
    )
    try:
        operator = operators.start()
        wait_for_tier(operator, namespace, "silver", _acting, 40, "a decision on silver")

        def invalid(name: str) -> dict[str, Any] | None:
            cond = condition(cluster.get_json("slotier", name, "-n", namespace), "InvalidSpec")
            return cond if cond.get("status") == "True" else None

        ghost = wait_until(lambda: invalid("ghost"), 20, "ghost InvalidSpec")
        assert "does-not-exist" in ghost["message"] and "does not exist" in ghost["message"]
        copycat = wait_until(lambda: invalid("copycat"), 20, "copycat InvalidSpec")
        assert f"{namespace}/gold" in copycat["message"]
        for name in ("gold", "silver"):
            body = cluster.get_json("slotier", name, "-n", namespace)
            assert condition(body, "InvalidSpec")["status"] == "False"
        # gold's own minReplicas (2) rules its Deployment, not the copycat's (3).
        wait_until(
            lambda: True if spec_replicas(cluster, namespace, "gold")[0] == 2 else None,
            20,
            "gold at its own 2 replicas",
        )
        time.sleep(3 * INTERVAL_S)
        assert spec_replicas(cluster, namespace, "gold")[0] == 2
        missing = cluster.kubectl(
            "get", "deployment", "does-not-exist", "-n", namespace, check=False
        )
        assert missing.returncode != 0, "nothing is created for an invalid tier"
        scaled = {p for d in operator.decisions() for p in d["scaled"]}
        assert scaled <= {f"{namespace}/gold", f"{namespace}/silver"}
    finally:
        load.stop()


def test_a_routing_config_envoy_rejects_leaves_live_routing_unchanged(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
) -> None:
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 1},
        [slotier("silver", namespace, deployment="silver")],
    )
    route = routing.tier_stat_name(namespace, "silver")
    pool = envoy.pool(namespace, "silver")
    envoy.apply(
        routing.RoutingTable(
            tiers=(routing.TierRoute(route, "x-slo-tier", "silver", {pool.name: 1000}),),
            pools=(pool,),
        )
    )
    live_before = envoy.process.live_versions()
    config_map_before = envoy.configmap_data()
    # A listener address Envoy cannot bind: every config the operator renders is refused.
    operator = operators.start(TIERSCALE_ENVOY_LISTENER_ADDRESS="not-an-ip")

    def rejected() -> dict[str, Any] | None:
        hold = condition(cluster.get_json("slotier", "silver", "-n", namespace), "Hold")
        return hold if hold.get("reason") == "RoutingRejected" else None

    with TierClient(envoy, "silver") as tier_client:
        for _ in range(5):
            tier_client.send()  # the route's counters exist: the operator can plan
        hold = wait_until(rejected, 40, "Hold: RoutingRejected")
        print(hold["message"])
        assert hold["status"] == "True" and "not-an-ip" in hold["message"]
        assert envoy.process.live_versions() == live_before
        assert envoy.configmap_data() == config_map_before
    assert _models_through_envoy(envoy, "silver") == 200, "the live route keeps serving"

    def envoy_errors() -> float | None:
        text = operator.metrics_text()
        errors = {
            labels["port"]: value
            for labels, value in metric_values(text, "tierscale_adapter_errors_total")
        }
        return errors.get("envoy") or None

    wait_until(envoy_errors, 10, "tierscale_adapter_errors_total{port=envoy} on /metrics")


def _models_through_envoy(envoy: TestbedEnvoy, tier: str) -> int:
    """Status of `GET /v1/models` sent with the tier's header (a vLLM pod answers 200)."""
    connection = http.client.HTTPConnection("127.0.0.1", envoy.settings.port, timeout=5)
    try:
        connection.request("GET", "/v1/models", headers={"x-slo-tier": tier})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_of_two_operator_processes_exactly_one_acts(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 1},
        [slotier("silver", namespace, deployment="silver")],
    )
    load = BackgroundLoad(
        envoy.listener_url, tmp_path / "load.json", *load_args("poisson:1", 120, "silver=1")
    )
    try:
        a = operators.start(name="a")
        wait_for_tier(a, namespace, "silver", _acting, 40, "a acting alone")
        b = operators.start(name="b")
        time.sleep(8)  # both see each other's peering entry; the lower priority pauses
        start = time.time()
        time.sleep(8)
        counts = {
            p.name: len(_decisions_between(p, namespace, "silver", start, time.time()))
            for p in (a, b)
        }
        print("decisions per process in 8 s:", counts)
        assert sorted(counts.values())[0] == 0 and sorted(counts.values())[1] >= 5, counts
        active, standby = (a, b) if counts["a"] else (b, a)
        assert standby.probe("/readyz")[0] == 200, "a paused standby is ready"
        active.stop()
        stopped_at = time.time()
        taken_at, _ = wait_for_tier(
            standby, namespace, "silver", _acting, 30, "the standby taking over", after_s=stopped_at
        )
        print(f"standby took over {taken_at - stopped_at:.1f} s after the active one stopped")
    finally:
        load.stop()
