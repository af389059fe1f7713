"""The Helm chart with the testbed's pinned Helm: lint, the values schema, what it renders
with and without the Prometheus Operator's CRDs, promtool on its rules, and an install
into the testbed's real API server whose ServiceAccount gets exactly the generated grants.

The first tests need only the Helm binary (no cluster); the install shares the session
cluster.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tierscale_testbed.binaries import BinariesMissingError, binary_path, require_binaries
from tierscale_testbed.cluster import Cluster

from tierscale.adapters.prometheus import rules as recording_rules
from tierscale.chart import rbac_rules
from tierscale.settings import Settings

pytestmark = [pytest.mark.e2e]

CHART = Path(__file__).resolve().parents[2] / "charts" / "tierscale"
MONITORING = (
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
)


def _helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        require_binaries()
    except BinariesMissingError as error:
        pytest.fail(str(error), pytrace=False)
    done = subprocess.run(
        [str(binary_path("helm")), *args], capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def _render(*args: str) -> list[dict[str, Any]]:
    text = _helm("template", "ts", str(CHART), "-n", "tierscale-system", *args).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, [(d["kind"], d["metadata"]["name"]) for d in docs]
    return found[0]


def test_helm_lint_is_clean() -> None:
    done = _helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("settings.controlIntervalS=-1", "controlIntervalS"),
        ("settings.logFormat=xml", "logFormat"),
        ("settings.noSuchSetting=1", "noSuchSetting"),
        ("image.tagg=x", "tagg"),
        ("prometheusRules.kind=Rules", "kind"),
        ("settings.metricsWindowS=45", "recording rules are shipped for"),
    ],
)
def test_a_wrong_value_fails_at_install_time(value: str, message: str) -> None:
    done = _helm("template", "ts", str(CHART), "--set", value, check=False)
    assert done.returncode != 0
    assert message in done.stderr


def test_settings_become_the_operators_environment() -> None:
    docs = _render("--set", "settings.dryRun=true", "--set", "settings.namespaces={a,b}")
    deployment = _one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["TIERSCALE_DRY_RUN"] == "true"
    assert env["TIERSCALE_NAMESPACES"] == "a,b"
    assert env["TIERSCALE_CONTROL_INTERVAL_S"] == "15"
    known = {f"TIERSCALE_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known
    # Every value the chart passes is one the operator accepts.
    plain = {k.removeprefix("TIERSCALE_").lower(): v for k, v in env.items() if isinstance(v, str)}
    Settings.model_validate({k: v for k, v in plain.items() if k not in ("namespaces",)})
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {
        p["httpGet"]["path"] for p in (container["livenessProbe"], container["readinessProbe"])
    } == {
        "/healthz",
        "/readyz",
    }
    bindings = [
        d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-tiers")
    ]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"]
    assert not [
        d
        for d in docs
        if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"].endswith("-tiers")
    ]


def test_prometheus_operator_objects_only_when_their_crds_exist() -> None:
    plain = _render()
    assert not [d for d in plain if d["kind"] in ("PrometheusRule", "ServiceMonitor")]
    rules_cm = _one(plain, "ConfigMap", "ts-tierscale-recording-rules")
    with_crds = _render(*MONITORING)
    rule = _one(with_crds, "PrometheusRule")
    expected = recording_rules.rule_groups(60.0, 15.0)["groups"]
    assert rule["spec"]["groups"] == expected
    assert yaml.safe_load(rules_cm["data"]["tierscale-rules.yaml"])["groups"] == expected
    monitor = _one(with_crds, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True  # keep the tiers' namespace
    forced_off = _render(*MONITORING, "--set", "metrics.serviceMonitor.enabled=false")
    assert not [d for d in forced_off if d["kind"] == "ServiceMonitor"]


def test_dashboards_are_configmaps_with_the_sidecar_label() -> None:
    docs = _render()
    dashboards = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]
    assert len(dashboards) == 3
    for cm in dashboards:
        ((name, text),) = cm["data"].items()
        assert json.loads(text) == json.loads((CHART / "dashboards" / name).read_text())


def test_the_envoy_configmap_starts_as_the_operators_empty_routing() -> None:
    """Before the first decision Envoy gets the operator's own rendering of no routes, at
    the listener and paths the settings say; Helm keeps it on uninstall."""
    from tierscale.adapters.envoy import routing, xds

    docs = _render("--set", "settings.envoyListenerPort=9000", "--set", "settings.envoyXdsDir=/x")
    cm = _one(docs, "ConfigMap", "tierscale-envoy")
    assert cm["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    layout = xds.XdsLayout("/x/lds", "/x/cds", "/x/rds", "/x/rtds")
    expected = xds.render(
        routing.RoutingTable(tiers=(), pools=()), layout, xds.ListenerSettings(port=9000)
    ).files()
    assert set(cm["data"]) == set(expected)
    for name, text in expected.items():
        assert yaml.safe_load(cm["data"][name])["resources"] == yaml.safe_load(text)["resources"]
    no_caps = _render("--set", "settings.envoyCapsInRuntime=false")
    assert "rtds.yaml" not in _one(no_caps, "ConfigMap", "tierscale-envoy")["data"]
    assert not [
        d
        for d in _render("--set", "envoy.configMap.create=false")
        if d["metadata"]["name"] == "tierscale-envoy"
    ]


def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    rules_cm = _one(_render(), "ConfigMap", "ts-tierscale-recording-rules")
    path = tmp_path / "rules.yaml"
    path.write_text(rules_cm["data"]["tierscale-rules.yaml"])
    done = subprocess.run(
        ["/usr/bin/promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_optional_objects() -> None:
    docs = _render(
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "replicaCount=2",
    )
    assert _one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert _one(docs, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0]["port"] == "metrics"
    assert _one(docs, "Deployment")["spec"]["replicas"] == 2
    assert not [d for d in _render() if d["kind"] in ("PodDisruptionBudget", "NetworkPolicy")]


def test_install_grants_exactly_the_generated_rules(cluster: Cluster, namespace: str) -> None:
    release = f"ts{namespace[-6:]}"
    cluster.helm(
        "install", release, str(CHART), "-n", namespace, "--set", "replicaCount=0", "--wait"
    )
    try:
        sa = f"system:serviceaccount:{namespace}:{release}-tierscale"
        assert cluster.get_json("crd", "slotiers.tierscale.dev")["spec"]["group"] == "tierscale.dev"
        doc = rbac_rules.document()
        for binding, rules in doc.items():
            if binding == "peeringNamespaced":
                continue  # bound only with settings.namespaces
            for rule in rules:
                for verb in rule["verbs"]:
                    target = _resource(rule)
                    where = namespace if binding != "clusterScoped" else None
                    assert _can(cluster, sa, verb, target, where), (verb, target, binding)
        for verb, target in (
            ("delete", ("apps", "deployments")),
            ("get", ("", "secrets")),
            ("create", ("", "pods")),
            ("update", ("apps", "deployments")),
            ("delete", ("", "configmaps")),
            ("patch", ("", "nodes")),
        ):
            assert not _can(cluster, sa, verb, target, namespace), (verb, target)
        # The planner-state ConfigMap grants hold only in the operator's namespace.
        assert not _can(cluster, sa, "create", ("", "configmaps"), "default")
        cluster.helm(
            "upgrade",
            release,
            str(CHART),
            "-n",
            namespace,
            "--reuse-values",
            "--set",
            "settings.dryRun=true",
            "--wait",
        )
        deployment = cluster.get_json("deployment", f"{release}-tierscale", "-n", namespace)
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "TIERSCALE_DRY_RUN", "value": "true"} in env
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait")
    # Helm never deletes CRDs from crds/: SLOTiers survive an uninstall.
    assert cluster.get_json("crd", "slotiers.tierscale.dev")["metadata"]["name"]
    assert cluster.kubectl(
        "get", "clusterrole", f"{release}-tierscale-tiers", check=False
    ).returncode


def _resource(rule: dict[str, Any]) -> tuple[str, str]:
    (group,) = rule["apiGroups"]
    (resource,) = rule["resources"]
    return group, resource


def _can(
    cluster: Cluster, user: str, verb: str, target: tuple[str, str], namespace: str | None
) -> bool:
    """A SubjectAccessReview (what the API server's authorizer answers), with no discovery:
    it works for resources whose CRD is not installed (KEDA's), as RBAC does."""
    group, resource = target
    base, _, sub = resource.partition("/")
    attributes: dict[str, str] = {"group": group, "resource": base, "verb": verb}
    if sub:
        attributes["subresource"] = sub
    if namespace is not None:
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts"],
            "resourceAttributes": attributes,
        },
    }
    done = cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    return bool(json.loads(done.stdout)["status"].get("allowed"))
