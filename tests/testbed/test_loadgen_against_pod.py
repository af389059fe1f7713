"""The load generator against one in-process simulated pod (real loopback HTTP)."""

from __future__ import annotations

import numpy as np
from tierscale_testbed.loadgen import runner, stats, workload
from tierscale_testbed.simvllm import metrics, pod_server

from tierscale_predictor import profiles


async def test_client_latencies_match_the_pods_histograms() -> None:
    pod = pod_server.PodServer(
        pod_server.PodConfig(model_name="m", profile=profiles.load_profile("llama-3.1-8b-h100"))
    )
    await pod.start()
    try:
        arrivals = [workload.Arrival(0.05 * k, 1000, 20) for k in range(20)]
        specs = workload.schedule(
            arrivals,
            mix={"gold": 1.0},
            bounds=workload.Bounds(20, 10.0),
            time_scale=1.0,
            rng=np.random.default_rng(0),
        )
        url = f"http://127.0.0.1:{pod.port}/v1/completions"
        result = await runner.run(url, specs, drain_timeout_s=20.0)
        await pod.engine.wait_idle()
    finally:
        await pod.stop()
    assert all(r.ok for r in result.results), [r.error for r in result.results]
    (summary,) = stats.summarize(result.results, {"gold": stats.Slo(10.0, 1.0)})
    assert summary.attainment_frac == 1.0
    server = pod.metrics.histograms[metrics.TTFT]
    assert server.count == 20
    assert pod.metrics.counters[metrics.GENERATION_TOKENS] == 400
    # Per request, client TTFT = server TTFT + HTTP and event-loop overhead (a speed, so
    # not bounded here); it can undercut the server's only by the engine loop's tick.
    client_mean = sum(r.ttft_s or 0.0 for r in result.results) / 20
    server_mean = server.sum / server.count
    assert client_mean >= server_mean - 0.01
