"""The Kubernetes adapter against a real API server, controller-manager and scheduler (kwok
GPU nodes): what it reads, how it scales, how it steps back for another writer, and what a
person sees in status, Events and the state ConfigMap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.simvllm.manifests import COMPONENT_LABEL, vllm_deployment

from tierscale import records
from tierscale.adapters.kubernetes import ConfigMapState, KubeCluster, rbac
from tierscale.adapters.kubernetes.configmap_state import (
    MODEL_ANNOTATION,
    STATE_KEY,
    UNREADABLE_KEY,
    configmap_name,
)
from tierscale.adapters.kubernetes.names import (
    DELETION_COST_ANNOTATION,
    DELETION_COST_REMOVE,
    FIELD_MANAGER,
    GPU_PRODUCT_LABEL,
    RESUME_ANNOTATION,
)
from tierscale.api import codec
from tierscale.api.status import build_status
from tierscale.domain.observations import TierObservation
from tierscale.domain.plans import PlannerState, TierDecision
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.loop.actions import TierEvent
from tierscale.loop.ports import EngineArgs, PoolView, ScaleOutcome, StateUnreadable

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CRD_NAME = "slotiers.tierscale.dev"
DEPLOYMENT = "gold-vllm"
TIMEOUT_S = 60.0


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def slotier_crd(cluster: Cluster) -> str:
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return CRD_NAME


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[k8s.ApiClient]:
    with cluster.api_client() as client:
        yield client


@pytest.fixture
def kube(api: k8s.ApiClient) -> KubeCluster:
    """A fresh adapter per test: what it remembers starts empty, as after a restart."""
    return KubeCluster(api, reporting_instance="e2e")


def tier_for(namespace: str, deployment: str = DEPLOYMENT) -> Tier:
    return Tier(
        name="gold",
        namespace=namespace,
        model="meta-llama/Llama-3.1-8B-Instruct",
        slo=Slo(ttft_s=0.3, tpot_s=0.03),
        pool=Pool(deployment=deployment, max_replicas=8),
    )


def deploy(
    cluster: Cluster, namespace: str, replicas: int, *, args: list[str] | None = None
) -> None:
    manifest = vllm_deployment(
        DEPLOYMENT, namespace, tier="gold", replicas=replicas, cold_start_s=1, termination_s=1
    )
    pod_spec = manifest["spec"]["template"]["spec"]
    # Not a simulated vLLM server: these pods only need to exist and turn Ready.
    del manifest["spec"]["template"]["metadata"]["labels"][COMPONENT_LABEL]
    pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: cluster.config.gpu_product}
    if args is not None:
        pod_spec["containers"][0]["args"] += args
    cluster.apply([manifest])


def deployment_json(cluster: Cluster, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = cluster.get_json(
        "deployment", DEPLOYMENT, "-n", namespace, "--show-managed-fields"
    )
    return body


def live_pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    pods = cluster.get_json("pods", "-n", namespace, "-l", f"app.kubernetes.io/name={DEPLOYMENT}")
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def ready_pods(cluster: Cluster, namespace: str, count: int) -> list[str]:
    def ready() -> list[str] | None:
        pods = live_pods(cluster, namespace)
        names = sorted(
            p["metadata"]["name"]
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        )
        return names if len(names) == count == len(pods) else None

    return cluster.wait_for(ready, TIMEOUT_S, f"{count} Ready pods of {DEPLOYMENT}")


def replicas_owners(deployment: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (entry["manager"], entry.get("subresource", ""))
        for entry in deployment["metadata"]["managedFields"]
        if "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
    ]


def view(kube: KubeCluster, namespace: str) -> PoolView:
    return kube.pools([tier_for(namespace)])[f"{namespace}/{DEPLOYMENT}"]


def scale_in_ticks(
    cluster: Cluster,
    kube: KubeCluster,
    namespace: str,
    replicas: int,
    inflight_by_pod: dict[str, float] | None = None,
) -> ScaleOutcome:
    """Read and scale as successive ticks do: a 409 (the Deployment's status moved between
    read and write, as it does while pods start) is re-read on the next tick."""

    def tick() -> ScaleOutcome | None:
        outcome = kube.scale(view(kube, namespace), replicas, inflight_by_pod or {})
        return None if outcome is ScaleOutcome.CONFLICT else outcome

    return cluster.wait_for(tick, TIMEOUT_S, f"a tick that scales to {replicas} without a 409")


def view_with_ready(cluster: Cluster, kube: KubeCluster, namespace: str, ready: int) -> PoolView:
    """The view once the Deployment's status counts `ready` Ready replicas."""

    def counted() -> PoolView | None:
        pool = view(kube, namespace)
        return pool if pool.replicas.ready == ready else None

    return cluster.wait_for(counted, TIMEOUT_S, f"readyReplicas {ready}")


# ----------------------------------------------------------------------------- reads


def test_reads_the_deployment_and_the_gpus(
    cluster: Cluster, namespace: str, kube: KubeCluster
) -> None:
    deploy(
        cluster,
        namespace,
        2,
        args=["--max-num-seqs=64", "--max-num-batched-tokens", "2048", "--max-model-len", "16K"],
    )
    ready_pods(cluster, namespace, 2)
    pool = view_with_ready(cluster, kube, namespace, 2)
    assert pool.exists and pool.replicas.current == 2 and pool.other_writer is None
    assert pool.engine == EngineArgs(
        max_num_seqs=64,
        max_num_batched_tokens=2048,
        max_model_len=16384,
        gpus_per_replica=1,
        accelerator=cluster.config.gpu_product,
    )
    assert (
        pool.resource_version == deployment_json(cluster, namespace)["metadata"]["resourceVersion"]
    )
    missing = kube.pools([tier_for(namespace, "nowhere")])[f"{namespace}/nowhere"]
    assert not missing.exists and missing.replicas.current is None
    assert kube.allocatable_gpus() == {
        cluster.config.gpu_product: cluster.config.gpu_nodes * cluster.config.gpus_per_node
    }


# ----------------------------------------------------------------------------- /scale


def test_scales_through_the_scale_subresource_as_tierscale(
    cluster: Cluster, namespace: str, kube: KubeCluster
) -> None:
    deploy(cluster, namespace, 1)
    assert scale_in_ticks(cluster, kube, namespace, 3) is ScaleOutcome.SCALED
    deployment = deployment_json(cluster, namespace)
    assert deployment["spec"]["replicas"] == 3
    assert replicas_owners(deployment) == [(FIELD_MANAGER, "scale")]
    ready_pods(cluster, namespace, 3)
    before = deployment_json(cluster, namespace)["metadata"]["generation"]
    assert kube.scale(view(kube, namespace), 3, {}) is ScaleOutcome.UNCHANGED
    assert deployment_json(cluster, namespace)["metadata"]["generation"] == before  # no write
    assert scale_in_ticks(cluster, kube, namespace, 1) is ScaleOutcome.SCALED
    ready_pods(cluster, namespace, 1)


def test_a_stale_resource_version_is_a_conflict_and_is_not_retried(
    cluster: Cluster, namespace: str, kube: KubeCluster
) -> None:
    deploy(cluster, namespace, 1)
    stale = view(kube, namespace)
    # Someone else writes the Deployment between tierscale's read and its scale.
    cluster.kubectl("annotate", "deployment", DEPLOYMENT, "-n", namespace, "touched=yes")
    before = deployment_json(cluster, namespace)
    assert kube.scale(stale, 2, {}) is ScaleOutcome.CONFLICT
    after = deployment_json(cluster, namespace)
    assert after["spec"]["replicas"] == 1
    # No write of tierscale's since (a retry would have changed the spec's generation and
    # added tierscale's managedFields entry).
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert (FIELD_MANAGER, "scale") not in replicas_owners(after)
    assert scale_in_ticks(cluster, kube, namespace, 2) is ScaleOutcome.SCALED  # next tick


def test_scale_down_removes_the_pods_with_the_least_work_in_flight(
    cluster: Cluster, namespace: str, kube: KubeCluster
) -> None:
    deploy(cluster, namespace, 4)
    pods = ready_pods(cluster, namespace, 4)
    view_with_ready(cluster, kube, namespace, 4)
    inflight = {pods[0]: 3.0, pods[1]: 0.0, pods[2]: 9.0, pods[3]: 1.0}
    assert scale_in_ticks(cluster, kube, namespace, 2, inflight) is ScaleOutcome.SCALED
    marked = {
        p["metadata"]["name"]
        for p in cluster.get_json("pods", "-n", namespace)["items"]
        if p["metadata"].get("annotations", {}).get(DELETION_COST_ANNOTATION)
        == DELETION_COST_REMOVE
    }
    assert marked == {pods[1], pods[3]}

    def two_left() -> list[str] | None:
        names = sorted(p["metadata"]["name"] for p in live_pods(cluster, namespace))
        return names if len(names) == 2 else None

    survivors = cluster.wait_for(two_left, TIMEOUT_S, "the ReplicaSet to remove two pods")
    assert survivors == [pods[0], pods[2]]


# ----------------------------------------------------------------------------- other writers


def hpa(name: str, min_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT},
            "minReplicas": min_replicas,
            "maxReplicas": 6,
        },
    }


def test_an_hpa_holds_tierscale_off_until_it_is_deleted(
    cluster: Cluster, namespace: str, kube: KubeCluster
) -> None:
    deploy(cluster, namespace, 1)
    assert scale_in_ticks(cluster, kube, namespace, 2) is ScaleOutcome.SCALED
    cluster.apply([hpa("gold-hpa", min_replicas=3)], "-n", namespace)
    held = view(kube, namespace)
    assert held.other_writer is not None
    assert (held.other_writer.kind, held.other_writer.name) == (
        "HorizontalPodAutoscaler",
        "gold-hpa",
    )
    assert kube.scale(held, 1, {}) is ScaleOutcome.REFUSED
    # The HPA controller raises replicas to its minimum (no metrics needed for that).
    cluster.wait_for(
        lambda: deployment_json(cluster, namespace)["spec"]["replicas"] == 3,
        TIMEOUT_S,
        "the HPA to scale to its minReplicas",
    )
    assert replicas_owners(deployment_json(cluster, namespace)) == [
        ("kube-controller-manager", "scale")
    ]
    cluster.kubectl("delete", "hpa", "gold-hpa", "-n", namespace)
    back = view(kube, namespace)
    assert back.other_writer is None  # its controller's trace does not hold tierscale
    assert scale_in_ticks(cluster, kube, namespace, 1) is ScaleOutcome.SCALED


def test_kubectl_scale_is_a_conflict_until_the_resume_annotation(
    cluster: Cluster, namespace: str, kube: KubeCluster, api: k8s.ApiClient
) -> None:
    deploy(cluster, namespace, 1)
    assert scale_in_ticks(cluster, kube, namespace, 2) is ScaleOutcome.SCALED
    cluster.kubectl("scale", "deployment", DEPLOYMENT, "-n", namespace, "--replicas=3")
    # kubectl sets no field manager for `scale`: the API server names it after the
    # program, `kubectl` (here the testbed's versioned binary name).
    kubectl = cluster.binaries["kubectl"].name
    assert replicas_owners(deployment_json(cluster, namespace)) == [(kubectl, "scale")]
    for _ in range(3):  # tick after tick, and a restarted adapter, say the same
        for adapter in (kube, KubeCluster(api)):
            held = view(adapter, namespace)
            assert held.other_writer is not None
            assert held.other_writer.describe().startswith(f"FieldManager {kubectl} (")
            assert f"{RESUME_ANNOTATION}=true" in held.other_writer.detail
            assert adapter.scale(held, 2, {}) is ScaleOutcome.REFUSED
    assert deployment_json(cluster, namespace)["spec"]["replicas"] == 3

    # The person hands back; tierscale's plan happens to be what is there (3).
    cluster.kubectl(
        "annotate", "deployment", DEPLOYMENT, "-n", namespace, f"{RESUME_ANNOTATION}=true"
    )
    assert view(KubeCluster(api), namespace).other_writer is None
    assert scale_in_ticks(cluster, kube, namespace, 3) is ScaleOutcome.UNCHANGED
    deployment = deployment_json(cluster, namespace)
    assert RESUME_ANNOTATION not in deployment["metadata"].get("annotations", {})  # consumed
    assert sorted(replicas_owners(deployment)) == [(kubectl, "scale"), (FIELD_MANAGER, "scale")]
    assert view(KubeCluster(api), namespace).other_writer is None  # a restart keeps it
    assert scale_in_ticks(cluster, kube, namespace, 2) is ScaleOutcome.SCALED
    assert replicas_owners(deployment_json(cluster, namespace)) == [(FIELD_MANAGER, "scale")]

    # A person scaling again after the hand-back is a new conflict.
    cluster.kubectl("scale", "deployment", DEPLOYMENT, "-n", namespace, "--replicas=1")
    again = view(kube, namespace)
    assert again.other_writer is not None and again.other_writer.name == kubectl


SCALED_OBJECT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "scaledobjects.keda.sh"},
    "spec": {
        "group": "keda.sh",
        "scope": "Namespaced",
        "names": {"kind": "ScaledObject", "plural": "scaledobjects", "singular": "scaledobject"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def test_a_keda_scaled_object_is_a_conflict_and_no_keda_is_none(
    cluster: Cluster, namespace: str, api: k8s.ApiClient
) -> None:
    """KEDA's own CRD is not in the testbed: a stand-in with its group, version and names."""
    deploy(cluster, namespace, 1)
    assert view(KubeCluster(api), namespace).other_writer is None  # no CRD: a 404, no error
    cluster.apply([SCALED_OBJECT_CRD])
    try:
        cluster.kubectl(
            "wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s"
        )
        scaled_object = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "gold-so", "namespace": namespace},
            "spec": {"scaleTargetRef": {"name": DEPLOYMENT}, "triggers": []},
        }
        cluster.apply([scaled_object])
        other = view(KubeCluster(api), namespace).other_writer
        assert other is not None and (other.kind, other.name) == ("ScaledObject", "gold-so")
    finally:
        cluster.kubectl("delete", "crd", "scaledobjects.keda.sh", "--wait=false")


# ----------------------------------------------------------------------------- status, Events


def create_slotier(cluster: Cluster, namespace: str) -> Tier:
    manifest = codec.to_resource(tier_for(namespace))
    manifest["metadata"]["namespace"] = namespace
    cluster.apply([manifest])
    stored = cluster.get_json("slotiers", "gold", "-n", namespace)
    return codec.to_tier(stored)


def decision(tier: Tier, replicas: int, reason: Reason = Reason.STEADY) -> TierDecision:
    return TierDecision(
        tier_key=tier.key,
        desired_replicas=replicas,
        weights_by_pool={tier.key: 1.0},
        reason=reason,
        message=f"holding {replicas} replicas for 3.00 req/s within SLO",
        forecast_rate_rps=3.0,
        served_rate_rps=3.0,
        predicted_ttft_s=0.12,
        predicted_tpot_s=0.02,
    )


def observation(tier: Tier, ready: int, ttft_s: float) -> TierObservation:
    return TierObservation(
        tier_key=tier.key,
        sampled_at_s=0.0,
        rate_rps=3.0,
        window_s=60.0,
        ready_replicas=ready,
        ttft_s=ttft_s,
        tpot_s=0.02,
        attainment_frac=0.995,
    )


def test_status_lands_whole_and_keeps_transition_times(
    cluster: Cluster, namespace: str, slotier_crd: str, kube: KubeCluster
) -> None:
    tier = create_slotier(cluster, namespace)
    generation, conditions = kube.status_context(tier)
    assert generation == 1 and conditions == []
    t0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    first = build_status(
        tier, decision(tier, 2), observation(tier, 1, 0.2), now=t0, generation=generation
    )
    kube.write_status(tier, first)
    stored = cluster.get_json("slotiers", "gold", "-n", namespace)["status"]
    assert stored == json.loads(json.dumps(first))
    table = cluster.kubectl("get", "slotiers", "-n", namespace, "-o", "wide").stdout
    header, row = table.splitlines()[:2]
    names = header.split()
    assert names[:10] == [
        *("NAME", "MODEL", "TTFT", "TTFT-OBS", "TPOT", "TPOT-OBS"),
        *("DESIRED", "READY", "ATTAINMENT", "REASON"),
    ]
    # Cells by the header's column offsets (an empty observed cell would shift split()).
    starts = [header.index(n) for n in names] + [len(row) + 1]
    cells = {n: row[starts[i] : starts[i + 1]].strip() for i, n in enumerate(names)}
    assert [cells[n] for n in ("DESIRED", "READY", "ATTAINMENT", "REASON")] == [
        *("2", "1", "0.995", "Steady")
    ]

    # Ten minutes later: Ready flips (2 of 2 ready), the other conditions do not; and a
    # field the new status leaves out must not survive from the old one.
    generation, conditions = kube.status_context(tier)
    second = build_status(
        tier,
        decision(tier, 2),
        observation(tier, 2, 0.25),
        now=t0 + timedelta(minutes=10),
        generation=generation,
        previous_conditions=conditions,
    )
    del second["latency"]["observedTtftSeconds"]
    kube.write_status(tier, second)
    stored = cluster.get_json("slotiers", "gold", "-n", namespace)["status"]
    since = {c["type"]: c["lastTransitionTime"] for c in stored["conditions"]}
    assert since["Ready"] == "2025-03-01T12:10:00Z"
    assert since["SLOMet"] == since["BudgetLimited"] == "2025-03-01T12:00:00Z"
    assert "observedTtftSeconds" not in stored["latency"]  # replaced whole, nothing stale


def test_an_event_regarding_the_slotier(
    cluster: Cluster, namespace: str, slotier_crd: str, kube: KubeCluster
) -> None:
    tier = create_slotier(cluster, namespace)
    message = "HorizontalPodAutoscaler web sets the replicas of Deployment gold-vllm (3 now)"
    kube.emit_event(tier, TierEvent(tier.key, Reason.CONFLICT, message, warning=True))
    events = [
        e
        for e in cluster.get_json("events.events.k8s.io", "-n", namespace)["items"]
        if e["regarding"].get("kind") == "SLOTier"
    ]
    assert len(events) == 1
    event = events[0]
    uid = cluster.get_json("slotiers", "gold", "-n", namespace)["metadata"]["uid"]
    assert event["regarding"] == {
        "apiVersion": "tierscale.dev/v1alpha1",
        "kind": "SLOTier",
        "name": "gold",
        "namespace": namespace,
        "uid": uid,
    }
    assert (event["reason"], event["type"], event["note"]) == ("Conflict", "Warning", message)
    assert event["reportingController"] == "tierscale.dev/operator"
    described = cluster.kubectl("describe", "slotier", "gold", "-n", namespace).stdout
    assert "Conflict" in described and "HorizontalPodAutoscaler web" in described


# ----------------------------------------------------------------------------- state


def test_planner_state_round_trips_through_a_configmap(
    cluster: Cluster, namespace: str, api: k8s.ApiClient
) -> None:
    model = "meta-llama/Llama-3.1-8B-Instruct"
    store = ConfigMapState(api, namespace)
    assert store.load(model) is None
    state = PlannerState(
        recommendations_by_tier={"llm/gold": ((100.0, 3), (115.0, 2))},
        last_plan_at_s=115.0,
        bias_by_tier={"llm/gold": 1.15},
        lengths_by_tier={"llm/gold": (512.0, 180.0, 2048.0, None)},
        correction_by_tier={"llm/gold": (1.0, 1.08)},
    )
    store.save(model, state)
    assert ConfigMapState(api, namespace).load(model) == state  # a restarted operator
    later = PlannerState(last_plan_at_s=130.0)
    store.save(model, later)
    assert store.load(model) == later
    name = configmap_name(model)
    stored = cluster.get_json("configmap", name, "-n", namespace)
    assert stored["metadata"]["annotations"][MODEL_ANNOTATION] == model

    # A newer tierscale's state (another schema version): reported, then kept aside.
    newer = stored["data"][STATE_KEY].replace(
        f'"schema_version":{records.SCHEMA_VERSION}', '"schema_version":99'
    )
    patch = json.dumps({"data": {STATE_KEY: newer}})
    cluster.kubectl("patch", "configmap", name, "-n", namespace, "--type=merge", "-p", patch)
    with pytest.raises(StateUnreadable, match="schema version 99"):
        store.load(model)
    store.save(model, later)
    kept = cluster.get_json("configmap", name, "-n", namespace)["data"]
    assert kept[UNREADABLE_KEY] == newer
    assert store.load(model) == later


# ----------------------------------------------------------------------------- RBAC


def test_every_call_works_with_exactly_the_documented_rbac(
    cluster: Cluster, namespace: str, slotier_crd: str
) -> None:
    """Run every adapter call as a ServiceAccount granted only `rbac.RULES` (impersonated),
    so a call added without its rule fails here."""
    account = f"system:serviceaccount:{namespace}:tierscale"
    cluster_role = f"tierscale-e2e-{namespace}"
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tierscale"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "tierscale"},
                "rules": rbac.policy_rules("operator-namespace"),
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "tierscale"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "tierscale",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "tierscale", "namespace": namespace}
                ],
            },
        ],
        "-n",
        namespace,
    )
    cluster.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": cluster_role},
                "rules": rbac.policy_rules("cluster"),
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": cluster_role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "tierscale", "namespace": namespace}
                ],
            },
        ]
    )
    try:
        deploy(cluster, namespace, 2)
        tier = create_slotier(cluster, namespace)
        ready_pods(cluster, namespace, 2)
        with cluster.api_client() as as_operator:
            as_operator.set_default_header("Impersonate-User", account)
            kube = KubeCluster(as_operator, reporting_instance="rbac")
            denied = cluster.kubectl(
                "get", "secrets", "-n", namespace, f"--as={account}", check=False
            )
            assert denied.returncode != 0 and "forbidden" in denied.stderr  # impersonation works
            assert kube.allocatable_gpus()
            view_with_ready(cluster, kube, namespace, 2)
            # A scale-down: lists and patches pods.
            assert scale_in_ticks(cluster, kube, namespace, 1) is ScaleOutcome.SCALED
            assert scale_in_ticks(cluster, kube, namespace, 2) is ScaleOutcome.SCALED
            generation, conditions = kube.status_context(tier)
            t0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
            kube.write_status(
                tier,
                build_status(tier, decision(tier, 2), None, now=t0, generation=generation),
            )
            kube.emit_event(tier, TierEvent(tier.key, Reason.STEADY, "steady", warning=False))
            store = ConfigMapState(as_operator, namespace)
            assert store.load("m") is None
            store.save("m", PlannerState(last_plan_at_s=1.0))
            store.save("m", PlannerState(last_plan_at_s=2.0))
            assert store.load("m") == PlannerState(last_plan_at_s=2.0)
    finally:
        cluster.kubectl(
            "delete", "clusterrolebinding,clusterrole", cluster_role, "--ignore-not-found"
        )
