"""Every panel of the shipped Grafana dashboards returns data after a closed-loop run.

Setup: the operator (as the chart's ServiceAccount, through the `operators` fixture)
manages three tiers on the testbed, Prometheus scrapes its `/metrics` every second.
gold lends to silver; bronze's Deployment has an HPA (a conflict, so the conflict panel
has a tier to show); a load step runs through Envoy for 21 s. Then every
target of every panel of `charts/tierscale/dashboards/*.json` runs against that
Prometheus over the run, as Grafana would send it ("All" for the variables), and must
return at least one finite sample. A preview PNG of each dashboard is rendered from the
same results (tmp dir; `make demo` renders the ones in docs/).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tierscale_testbed import dashboard_preview
from tierscale_testbed.chart import CHART_DIR
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy
from tierscale_testbed.operator import BackgroundLoad, deploy, load_args, slotier, wait_for_tier
from tierscale_testbed.prometheus import TestbedPrometheus
from tierscale_testbed.pytest_operator import Operators
from tierscale_testbed.simvllm.process import SimVllmProcess

pytestmark = [pytest.mark.e2e]

DASHBOARDS = sorted((CHART_DIR / "dashboards").glob("*.json"))
RATE_WINDOW_S = 10.0


def test_every_panel_returns_data_after_a_closed_loop_run(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    prometheus: TestbedPrometheus,
    operators: Operators,
    tmp_path: Path,
) -> None:
    assert len(DASHBOARDS) == 3
    deploy(
        cluster,
        simvllm,
        namespace,
        {"gold": 1, "silver": 1, "bronze": 1},
        [
            slotier(
                "gold",
                namespace,
                deployment="gold",
                ttft="500ms",
                tpot="50ms",
                priority=30,
                max_replicas=2,
            ),
            slotier(
                "silver",
                namespace,
                deployment="silver",
                ttft="1s",
                tpot="75ms",
                priority=20,
                max_replicas=4,
                stabilization="10s",
            ),
            slotier(
                "bronze",
                namespace,
                deployment="bronze",
                ttft="5s",
                tpot="200ms",
                priority=10,
                max_replicas=2,
            ),
        ],
    )
    cluster.apply(
        [
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "bronze", "namespace": namespace},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "bronze",
                    },
                    "minReplicas": 1,
                    "maxReplicas": 2,
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
    start_s = time.time()
    operator = operators.start()
    load = BackgroundLoad(
        envoy.listener_url,
        tmp_path / "load.json",
        *load_args("step:2/6/3:7", 21, "gold=1,silver=3,bronze=1"),
    )
    try:
        wait_for_tier(
            operator,
            namespace,
            "bronze",
            lambda t: t["reason"] == "Conflict",
            30,
            "bronze in conflict with its HPA",
        )
        load.finish(timeout_s=120)
    finally:
        load.stop()
    time.sleep(3.0)  # the operator's last samples are scraped
    end_s = time.time()
    empty: list[str] = []
    for path in DASHBOARDS:
        title, panels = dashboard_preview.load(path)
        results = dashboard_preview.run(
            prometheus.url, panels, start_s, end_s, step_s=2.0, rate_window_s=RATE_WINDOW_S
        )
        empty += [f"{path.name}: {r.panel.title}: {r.queries}" for r in results if not r.has_data]
        png = dashboard_preview.render(title, results, start_s, tmp_path / f"{path.stem}.png")
        assert png.stat().st_size > 20_000
    assert not empty, "\n".join(empty)
