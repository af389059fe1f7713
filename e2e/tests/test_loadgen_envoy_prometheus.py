"""Load sent through Envoy with tier headers reaches the simulated pods and shows up in
Prometheus as per-pod TTFT/ITL quantiles, request rates and running/waiting gauges; the
latencies the client measured agree with the ones the pods reported."""

from __future__ import annotations

import math
import secrets
from typing import Any

import pytest
from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import TestbedEnvoy, wait_until
from tierscale_testbed.prometheus import TestbedPrometheus, value
from tierscale_testbed.pytest_workload import LoadgenRunner
from tierscale_testbed.simvllm import manifests
from tierscale_testbed.simvllm.process import SimVllmProcess

from tierscale.adapters.envoy import routing

pytestmark = [pytest.mark.e2e]

# A 9000-token prompt takes two chunked-prefill steps, ~0.16 s on the H100 profile: the
# middle of TTFT bucket (0.1, 0.25], so HTTP overhead cannot push a median across an edge.
PROMPT_TOKENS = 9000
OUTPUT_TOKENS = 32
RATE_RPS = 3
DURATION_S = 10


def _route_tier(envoy: TestbedEnvoy, namespace: str, deployment: str, tier: str) -> None:
    pool = routing.cluster_name(namespace, deployment)
    envoy.apply(
        routing.RoutingTable(
            tiers=(routing.TierRoute(tier, "x-slo-tier", tier, {pool: 1000}),),
            pools=(routing.PoolCluster(pool, envoy.eds_source(namespace, deployment)),),
        )
    )


def _per_pod(samples: list[dict[str, Any]]) -> dict[str, float]:
    return {s["metric"]["pod"]: value(s) for s in samples}


def _median_bucket(
    prometheus: TestbedPrometheus, metric: str, selector: str
) -> tuple[float, float]:
    """(lower, upper] edges of the histogram bucket holding the server-side median."""
    rows = prometheus.query(f"sum by (le) ({metric}_bucket{{{selector}}})")
    cumulative = sorted((float(r["metric"]["le"]), value(r)) for r in rows)
    total = cumulative[-1][1]
    lower = 0.0
    for edge, count in cumulative:
        if count >= total / 2:
            return lower, edge
        lower = edge
    raise AssertionError(f"no median bucket in {cumulative}")


def test_load_through_envoy_is_seen_by_prometheus_and_agrees_with_the_client(
    cluster: Cluster,
    namespace: str,
    simvllm: SimVllmProcess,
    envoy: TestbedEnvoy,
    prometheus: TestbedPrometheus,
    run_loadgen: LoadgenRunner,
) -> None:
    name = f"gold-{secrets.token_hex(2)}"
    cluster.apply(
        [manifests.vllm_deployment(name, namespace, tier="gold", replicas=2, cold_start_s=1)]
    )
    pods = {e.pod for e in simvllm.wait_for_serving(namespace, name, 2, timeout_s=45)}
    _route_tier(envoy, namespace, name, "gold")
    pool = routing.cluster_name(namespace, name)
    wait_until(lambda: envoy.process.host_count(pool) == 2 or None, 10, "both pods in Envoy")
    prometheus.wait_for_targets(
        "vllm",
        lambda ts: (
            sum(t["labels"].get("namespace") == namespace and t["health"] == "up" for t in ts) == 2
        ),
    )

    summary = run_loadgen(
        envoy.listener_url,
        *("--pattern", f"poisson:{RATE_RPS}", "--max-duration-s", str(DURATION_S)),
        *("--max-requests", "100", "--drain-timeout-s", "30"),
        *("--prompt-tokens", str(PROMPT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS)),
        *("--tier-mix", "gold=1", "--slo", "gold=1.0:0.05", "--seed", "7"),
        timeout_s=90,
    )
    (gold,) = summary["tiers"]
    assert summary["exit_code"] == 0, summary["table"]
    assert gold["tier"] == "gold"
    assert gold["ok"] == gold["sent"] == summary["sent"] >= 15
    sent = gold["sent"]
    # Each request needs ~0.16 s of its 1 s TTFT and ~10 ms of its 50 ms TPOT, so a
    # healthy path meets all of them; but the control plane, Prometheus, Envoy, the pods
    # and the load generator share 2 cores here, and one request that lost its core for a
    # moment missed (32 of 33 in a fresh-clone CI run). More than one miss is a slow path.
    missed = round((1.0 - gold["attainment_frac"]) * sent)
    assert missed <= 1, summary["table"]

    sel = f'namespace="{namespace}",deployment="{name}",tier="gold"'
    prometheus.wait_for(
        f"sum(vllm:request_success_total{{{sel},finished_reason='length'}})",
        lambda r: len(r) == 1 and value(r[0]) == sent,
    )
    # Per-pod quantiles, rates and gauges, each series labelled with its pod.
    for metric in ("time_to_first_token_seconds", "inter_token_latency_seconds"):
        quantiles = _per_pod(
            prometheus.wait_for(
                f"histogram_quantile(0.5, sum by (pod, le) "
                f"(increase(vllm:{metric}_bucket{{{sel}}}[2m])))",
                lambda r: len(r) == 2,
            )
        )
        assert set(quantiles) == pods
        assert all(math.isfinite(q) and q > 0 for q in quantiles.values()), quantiles
    rates = _per_pod(
        prometheus.query(f"sum by (pod) (rate(vllm:request_success_total{{{sel}}}[1m]))")
    )
    assert set(rates) == pods and all(r > 0 for r in rates.values())
    for gauge in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        assert set(_per_pod(prometheus.query(f"vllm:{gauge}{{{sel}}}"))) == pods

    # Agreement. Per request, client TTFT = server TTFT + HTTP/Envoy/event-loop overhead,
    # so the client's mean may exceed the server's by that overhead and never fall below
    # it by more than the engine loop's tick; and the client's median lies in the bucket
    # that holds the server histogram's median.
    lower, upper = _median_bucket(prometheus, "vllm:time_to_first_token_seconds", sel)
    client_p50 = gold["ttft_s_by_pct"]["p50"]
    (server_sum,) = prometheus.query(f"sum(vllm:time_to_first_token_seconds_sum{{{sel}}})")
    server_mean = value(server_sum) / sent
    overhead_s = gold["ttft_s_mean"] - server_mean
    print(  # shown with -rP; docs/testbed.md quotes these numbers
        f"sent={sent} client_ttft_p50_s={client_p50:.4f} server_median_bucket=({lower}, "
        f"{upper}] client_ttft_mean_s={gold['ttft_s_mean']:.4f} "
        f"server_ttft_mean_s={server_mean:.4f} overhead_s={overhead_s:.4f}"
    )
    assert lower < client_p50 <= upper, (lower, client_p50, upper)
    assert -0.01 <= overhead_s < 0.15, (gold, server_mean)
    tpot_lower, tpot_upper = _median_bucket(
        prometheus, "vllm:request_time_per_output_token_seconds", sel
    )
    # The client times the decode from its own first token to its last, so the path's
    # delay on the first chunk (up to the TTFT overhead above) shortens it by that much
    # over the request's 31 inter-token gaps: a server median just inside a bucket can
    # read just below its edge (9.98 ms against (10 ms, 25 ms] in one fresh-clone run).
    slack_s = max(overhead_s, 0.001) / (OUTPUT_TOKENS - 1)
    client_tpot_p50 = gold["tpot_s_by_pct"]["p50"]
    assert tpot_lower - slack_s < client_tpot_p50 <= tpot_upper + slack_s, (gold, slack_s)
