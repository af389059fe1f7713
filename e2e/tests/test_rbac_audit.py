"""RBAC proven least-privilege on the real API server: the operator's requests, audited.

Every e2e test that runs the operator (closed loop, dry-run, faults, dashboards) starts it
with a TokenRequest token of the Helm chart's ServiceAccount (`pytest_chart`), never as
admin, and the testbed's kube-apiserver writes an audit log of every request made as a
ServiceAccount. This test runs last (`e2e/conftest.py`) and reads it:

- no request of the operator was denied (a missing grant would be a 403 here, not in a
  user's cluster);
- every (verb, resource) the chart grants was used at least once, or carries an
  `unexercised` reason in `tierscale.chart.rbac_rules.UNEXERCISED` (an unused grant with
  no reason fails: it should not be granted).

The grants are read from what the chart really rendered for those installs (its Roles and
ClusterRoles), plus the cluster-wide mode's, which differ only in peering. Run alone (no
operator test before it in the session), or after tests that left a grant unused, it runs
one short closed loop of its own (a scale-up and a scale-down) before judging.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tierscale_testbed import audit
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy
from tierscale_testbed.operator import BackgroundLoad, deploy, load_args, slotier, wait_for_tier
from tierscale_testbed.pytest_chart import OperatorAudit
from tierscale_testbed.pytest_operator import Operators
from tierscale_testbed.simvllm.process import SimVllmProcess

from tierscale.chart import rbac_rules

pytestmark = [pytest.mark.e2e]


def _why_unused(grant: audit.Grant) -> str | None:
    verb, group, resource = grant
    return rbac_rules.UNEXERCISED.get((group, resource, verb))


def _exercise(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operators: Operators,
    tmp_path: Path,
) -> None:
    """A short closed loop: scale up under load, then down (pod deletion cost)."""
    deploy(
        cluster,
        simvllm,
        namespace,
        {"audit": 1},
        [
            slotier(
                "audit",
                namespace,
                deployment="audit",
                ttft="1s",
                tpot="75ms",
                max_replicas=3,
                stabilization="5s",
            )
        ],
    )
    operator = operators.start()
    # 5000-token prompts: 8 req/s of them need a second replica at 1 s / 75 ms (1000-token
    # prompts no longer did with the refitted profile, and the scale-up never came).
    args = load_args("poisson:8", 15, "audit=1")
    args[args.index("--prompt-tokens") + 1] = "5000"
    load = BackgroundLoad(envoy.listener_url, tmp_path / "load.json", *args)
    try:
        up_at, _ = wait_for_tier(
            operator, namespace, "audit", lambda t: t["desired"] > 1, 60, "a scale-up"
        )
        load.finish(timeout_s=90)
    finally:
        load.stop()
    wait_for_tier(
        operator,
        namespace,
        "audit",
        lambda t: t["desired"] == 1,
        60,
        "the scale-down after the load",
        after_s=up_at,
    )
    time.sleep(2.0)


def test_operator_requests_were_all_allowed_and_every_grant_was_used(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    operator_audit: OperatorAudit,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    def exercise() -> None:
        operators: Operators = request.getfixturevalue("operators")
        _exercise(cluster, namespace, simvllm, envoy, operators, tmp_path)

    def judge() -> audit.Verdict:
        time.sleep(1.0)  # the audit backend writes asynchronously
        requests = operator_audit.requests()
        assert requests, f"no audited request in {operator_audit.log_path}"
        granted = {g: _why_unused(g) for g in operator_audit.granted}
        # The cluster-wide mode (settings.namespaces empty) differs in peering only.
        cluster_wide = audit.grants(_cluster_wide_rules())
        granted |= {g: why for g, why in cluster_wide.items() if g not in granted}
        return audit.verdict(requests, granted)

    exercised = not operator_audit.releases
    if exercised:
        exercise()
    verdict = judge()
    if verdict.unused and not exercised:
        # A subset of the suite that never scaled (e.g. one fault test): run the short
        # closed loop too, so the verdict is about the grants, not about which tests ran.
        exercise()
        verdict = judge()
    report = _report(verdict, len(operator_audit.releases))
    print(report)
    assert not verdict.denied, report
    assert not verdict.unused, report
    assert not verdict.ungranted, report


def _cluster_wide_rules() -> Mapping[str, Any]:
    doc = dict(rbac_rules.document())
    doc.pop("peeringNamespaced")
    return doc


def _report(verdict: audit.Verdict, releases: int) -> str:
    lines = [
        f"audited operator requests: {verdict.requests} from {releases} chart install(s); "
        f"denied {len(verdict.denied)}; grants used {len(verdict.used)}; "
        f"unused without a reason {len(verdict.unused)}; unused with a reason "
        f"{len(verdict.unused_documented)}",
    ]
    lines += [f"  DENIED {r.verb} {r.group}/{r.resource} {r.uri}" for r in verdict.denied[:20]]
    lines += [f"  UNUSED {v} {g}/{r}" for v, g, r in verdict.unused]
    lines += [
        f"  unused, documented: {v} {g}/{r}: {why}"
        for (v, g, r), why in verdict.unused_documented.items()
    ]
    lines += [f"  used {n:5d}  {v} {g}/{r}" for (v, g, r), n in sorted(verdict.used.items())]
    return "\n".join(lines)
