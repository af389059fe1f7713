"""Dry-run (advisory) mode on the testbed: the operator plans and explains (status, Events,
metrics) and writes nothing to Deployments, pods or routes. The proof is what the API
server holds: the Deployment's managedFields name no tierscale manager, no pod carries a
deletion cost, and the routing ConfigMap keeps its resourceVersion."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy
from tierscale_testbed.operator import (
    BackgroundLoad,
    condition,
    deploy,
    load_args,
    metric_values,
    slotier,
    spec_replicas,
    wait_for_tier,
    wait_until,
)
from tierscale_testbed.pytest_operator import Operators
from tierscale_testbed.simvllm.process import SimVllmProcess

from tierscale.adapters.envoy import routing
from tierscale.adapters.kubernetes.names import DELETION_COST_ANNOTATION, FIELD_MANAGER

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_dry_run_writes_status_events_and_metrics_and_no_deployment_or_route(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    # silver runs 1 replica; its SLOTier wants at least 2: the plan differs from what runs.
    deploy(
        cluster,
        simvllm,
        namespace,
        {"silver": 1},
        [slotier("silver", namespace, deployment="silver", min_replicas=2, max_replicas=3)],
    )
    # The team's own routing, as it was before tierscale (dry-run never writes routes).
    route, pool = routing.tier_stat_name(namespace, "silver"), envoy.pool(namespace, "silver")
    envoy.apply(
        routing.RoutingTable(
            tiers=(routing.TierRoute(route, "x-slo-tier", "silver", {pool.name: 1000}),),
            pools=(pool,),
        )
    )
    routing_version = (
        envoy.core_v1()
        .read_namespaced_config_map(envoy.configmap_name, envoy.namespace)
        .metadata.resource_version
    )
    load = BackgroundLoad(
        envoy.listener_url, tmp_path / "load.json", *load_args("poisson:1", 60, "silver=1")
    )
    try:
        operator = operators.start(TIERSCALE_DRY_RUN="true")
        wait_for_tier(
            operator,
            namespace,
            "silver",
            lambda e: e["desired"] == 2,
            40,
            "the plan wanting 2 replicas",
        )

        def status_written() -> dict[str, object] | None:
            body = cluster.get_json("slotier", "silver", "-n", namespace)
            status = body.get("status") or {}
            replicas = status.get("replicas") or {}
            return body if (replicas.get("desired"), replicas.get("ready")) == (2, 1) else None

        body = wait_until(status_written, 20, "the status with the plan")
        assert condition(body, "Ready")["status"] == "False"  # 1 of 2 desired replicas
        table = cluster.kubectl("get", "slotiers", "-n", namespace).stdout
        print(table)
        assert "DESIRED" in table and "REASON" in table

        def event() -> list[dict[str, object]] | None:
            items = cluster.get_json("events.events.k8s.io", "-n", namespace)["items"]
            ours = [e for e in items if e.get("reportingController") == "tierscale.dev/operator"]
            return ours or None

        events = wait_until(event, 20, "an Event from tierscale")
        assert any(e.get("regarding", {}).get("name") == "silver" for e in events)
        wait_until(
            lambda: (
                True
                if any(
                    labels.get("tier") == "silver" and value == 2.0
                    for labels, value in metric_values(
                        operator.metrics_text(), "tierscale_tier_desired_replicas"
                    )
                )
                else None
            ),
            10,
            "tierscale_tier_desired_replicas on /metrics",
        )
        time.sleep(5)  # several more decisions, none of them written
    finally:
        load.stop()

    assert spec_replicas(cluster, namespace, "silver")[0] == 1
    deployment = cluster.get_json("deployment", "silver", "-n", namespace)
    managers = {f.get("manager") for f in deployment["metadata"].get("managedFields", [])}
    assert FIELD_MANAGER not in managers, managers
    pods = cluster.get_json("pods", "-n", namespace)["items"]
    assert not any(
        DELETION_COST_ANNOTATION in (p["metadata"].get("annotations") or {}) for p in pods
    )
    assert (
        envoy.core_v1()
        .read_namespaced_config_map(envoy.configmap_name, envoy.namespace)
        .metadata.resource_version
        == routing_version
    )
    assert all(d["routing"] is None and not d["scaled"] for d in operator.decisions())
