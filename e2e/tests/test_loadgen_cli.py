"""The load generator's command line, end to end against a standalone simulator process:
a trace replayed with time scaling and a tier mix, cut by its bounds, reported as JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tierscale_testbed.pytest_workload import LoadgenRunner
from tierscale_testbed.simvllm import process


@pytest.fixture(scope="module")
def standalone_pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("standalone-simvllm")
    with process.running(
        None, root / "discovery", root / "simvllm.log", extra_args=("--standalone-pods", "1")
    ) as sim:
        (endpoint,) = sim.wait_for_serving("standalone", "sim", 1)
        yield f"http://127.0.0.1:{endpoint.port}"


def test_trace_replay_is_bounded_scaled_and_reported_per_tier(
    standalone_pod: str, run_loadgen: LoadgenRunner, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.csv"
    rows = [f"{0.5 * k},{200 + k},{8}" for k in range(40)]  # 20 s of trace, 2 req/s
    trace.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + "\n".join(rows))
    summary = run_loadgen(
        standalone_pod,
        *("--trace", str(trace), "--time-scale", "10", "--max-requests", "25"),
        *("--tier-mix", "gold=1,silver=1", "--slo", "gold=5:1,silver=0.000001:1"),
        *("--max-duration-s", "30", "--seed", "3"),
        timeout_s=60,
    )
    assert summary["exit_code"] == 0, summary["table"]
    assert summary["sent"] == 25  # cut by count, not by the 40 rows
    assert summary["wall_s"] < 10  # 12 s of trace at 10x: ~1.2 s of sending
    by_tier = {t["tier"]: t for t in summary["tiers"]}
    assert set(by_tier) == {"gold", "silver"}
    assert sum(t["sent"] for t in by_tier.values()) == 25
    assert by_tier["gold"]["attainment_frac"] == 1.0
    assert by_tier["silver"]["attainment_frac"] == 0.0  # a 1 us TTFT SLO cannot be met
    assert 0 < by_tier["gold"]["ttft_s_by_pct"]["p50"] < 5
    assert "gold" in summary["table"]


def test_a_non_loopback_target_is_refused(run_loadgen: LoadgenRunner) -> None:
    with pytest.raises(RuntimeError, match="non-loopback"):
        run_loadgen("http://192.0.2.1:80", "--pattern", "poisson:1", "--max-requests", "1")
