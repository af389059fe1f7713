"""pytest plugin: the simulated vLLM process and the load generator as fixtures.

- ``simvllm_discovery_dir`` (session): where the simulator publishes ``file_sd.json`` and
  ``endpoints.json``; Prometheus and Envoy fixtures read it without starting anything.
- ``simvllm`` (session): one simulator process watching every namespace of the ``cluster``
  fixture, stopped (pods drained) at the end of the session even when tests fail.
- ``run_loadgen``: run ``python -m tierscale_testbed.loadgen`` as a bounded subprocess and
  return its JSON summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from tierscale_testbed.cluster import Cluster
from tierscale_testbed.simvllm import process

SIMVLLM_FAST_TEST_ARGS = ("--drain-timeout-s", "30")


@pytest.fixture(scope="session")
def simvllm_discovery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("simvllm-discovery")


@pytest.fixture(scope="session")
def simvllm(
    cluster: Cluster, simvllm_discovery_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[process.SimVllmProcess]:
    log_path = tmp_path_factory.mktemp("simvllm-log") / "simvllm.log"
    with process.running(
        cluster.kubeconfig, simvllm_discovery_dir, log_path, extra_args=SIMVLLM_FAST_TEST_ARGS
    ) as handle:
        yield handle


class LoadgenRunner(Protocol):
    def __call__(self, target: str, *args: str, timeout_s: float = ...) -> dict[str, Any]: ...


def run_loadgen_cli(
    target: str, *args: str, json_path: Path, timeout_s: float = 120.0
) -> dict[str, Any]:
    """One bounded load generator run; a non-zero exit (some request failed) is returned
    in the summary's ``exit_code`` rather than raised, so tests can assert on attainment."""
    cmd = [sys.executable, "-m", "tierscale_testbed.loadgen", "--target", target]
    cmd += [*args, "--json", str(json_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if not json_path.exists():
        raise RuntimeError(f"loadgen failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary: dict[str, Any] = json.loads(json_path.read_text())
    summary["exit_code"] = done.returncode
    summary["table"] = done.stdout
    return summary


@pytest.fixture
def run_loadgen(tmp_path: Path) -> LoadgenRunner:
    counter = iter(range(1_000_000))

    def run(target: str, *args: str, timeout_s: float = 120.0) -> dict[str, Any]:
        json_path = tmp_path / f"loadgen-{next(counter)}.json"
        return run_loadgen_cli(target, *args, json_path=json_path, timeout_s=timeout_s)

    return run
