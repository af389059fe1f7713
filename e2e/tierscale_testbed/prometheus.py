"""Debian's Prometheus as a local process with the project's config and recording rules.

Scrapes every 1 s so e2e tests see a change within seconds. Targets:
- `vllm`: the simulated vLLM pods, from the `file_sd.json` the simulator publishes, with
  the labels a Kubernetes scrape would attach (namespace, pod, deployment, tier);
- `envoy`: Envoy's admin `/stats/prometheus`;
- `tierscale-operator`: from a file_sd file the operator's test fixture writes.
Each run gets a fresh TSDB in a temp dir, so no test sees another run's samples.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tierscale_testbed import processes
from tierscale_testbed.envoy import die_with_parent, free_port, wait_until
from tierscale_testbed.simvllm import discovery

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
PROMTOOL_BINARY = Path("/usr/bin/promtool")
INSTALL_HINT = "run scripts/testbed/install-system-deps.sh (make testbed-binaries)"
RULES_FILE = Path(__file__).with_name("prometheus") / "rules.yml"
SCRAPE_INTERVAL_S = 1

Sample = dict[str, Any]
"""One instant-vector element as the HTTP API returns it: {"metric": {...}, "value": [t, v]}."""


def render_config(
    vllm_file_sd: Path,
    envoy_admin: str | None,
    operator_file_sd: Path,
    rules_file: Path = RULES_FILE,
) -> dict[str, Any]:
    """The prometheus.yml for one testbed run; `envoy_admin` is `host:port` or None."""
    interval = f"{SCRAPE_INTERVAL_S}s"
    scrape_configs: list[dict[str, Any]] = [
        {
            "job_name": "vllm",
            "file_sd_configs": [{"files": [str(vllm_file_sd)], "refresh_interval": interval}],
            # vLLM's own series carry model_name; a target label of the same name would
            # rename theirs to exported_model_name. A Kubernetes scrape does not add it.
            "relabel_configs": [{"action": "labeldrop", "regex": "model_name"}],
        },
        {
            "job_name": "tierscale-operator",
            "file_sd_configs": [{"files": [str(operator_file_sd)], "refresh_interval": interval}],
        },
    ]
    if envoy_admin is not None:
        scrape_configs.append(
            {
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [envoy_admin]}],
            }
        )
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": scrape_configs,
    }


class PrometheusQueryError(RuntimeError):
    pass


class TestbedPrometheus:
    """One Prometheus process on a loopback port; `stop()` always kills it."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        root: Path,
        vllm_discovery_dir: Path,
        envoy_admin: str | None = None,
        binary: Path = PROMETHEUS_BINARY,
    ) -> None:
        if not binary.exists():
            raise FileNotFoundError(f"{binary} is missing; {INSTALL_HINT}")
        self.root = root
        self.binary = binary
        self.vllm_file_sd = vllm_discovery_dir / discovery.FILE_SD_NAME
        self.operator_file_sd = root / "targets" / "operator.json"
        self.config_path = root / "prometheus.yml"
        self.log_path = root / "prometheus.log"
        self.envoy_admin = envoy_admin
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.start_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> float:
        """Start and wait for `/-/ready`; returns the seconds that took."""
        self.vllm_file_sd.parent.mkdir(parents=True, exist_ok=True)
        self.operator_file_sd.parent.mkdir(parents=True, exist_ok=True)
        if not self.operator_file_sd.exists():
            self.operator_file_sd.write_text("[]\n")
        config = render_config(self.vllm_file_sd, self.envoy_admin, self.operator_file_sd)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = self.port or free_port()  # a restart keeps its address (and its TSDB)
        started = time.monotonic()
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=2h",
                    "--web.enable-lifecycle",
                    "--log.level=info",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        try:
            wait_until(self._ready, timeout_s, f"Prometheus /-/ready (log: {self.log_path})")
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - started
        return self.start_s

    def _ready(self) -> bool | None:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self._proc.returncode}: {self.log_path}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return True if response.status == 200 else None
        except OSError:
            return None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        processes.stop_process(proc, grace_s=15)

    def set_operator_targets(self, addresses: list[str], labels: dict[str, str]) -> None:
        """Point the `tierscale-operator` job at `host:port` metrics endpoints.

        Written by rename, so Prometheus' file watcher never reads half a file.
        """
        groups = [{"targets": addresses, "labels": labels}] if addresses else []
        tmp = self.operator_file_sd.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.operator_file_sd)

    def __enter__(self) -> TestbedPrometheus:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[Sample]:
        """Instant query; the result vector (empty when nothing matches)."""
        data = self.api("query", query=promql)
        result: list[Sample] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def wait_for_targets(
        self,
        job: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll the active targets of `job` until `predicate(targets)` (never on an empty list)."""

        def check() -> list[dict[str, Any]] | None:
            targets = _targets_of(self, job)
            return targets if targets and predicate(targets) else None

        return wait_until(check, timeout_s, f"targets of job {job!r} to satisfy the predicate")

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[Sample]], bool],
        timeout_s: float = 30.0,
    ) -> list[Sample]:
        """Poll `promql` until `predicate(result)`; the result that satisfied it."""
        last: list[list[Sample]] = [[]]

        def check() -> list[Sample] | None:
            last[0] = self.query(promql)
            return last[0] if predicate(last[0]) else None

        try:
            return wait_until(check, timeout_s, f"{promql!r} to satisfy the predicate")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; last result: {last[0]}") from None


def _targets_of(server: TestbedPrometheus, job: str) -> list[dict[str, Any]]:
    return [t for t in server.targets() if t["labels"].get("job") == job]


def value(sample: Sample) -> float:
    """The float value of one instant-vector element."""
    return float(sample["value"][1])
