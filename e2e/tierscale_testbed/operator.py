"""The tierscale operator as a real process (`python -m tierscale.cli run`) on the testbed.

Configured only through `TIERSCALE_*` environment variables, as the Helm chart will do:
the testbed's API server (KUBECONFIG), Prometheus, the routing ConfigMap Envoy mounts
and Envoy's EDS directory, with compressed time (1 s decisions, 10 s metric windows).
Its JSON log (one line per decision) and `/metrics` are what tests read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tierscale_testbed.envoy import TestbedEnvoy, die_with_parent, envoy_binary, free_port
from tierscale_testbed.prometheus import TestbedPrometheus

T = TypeVar("T")

FAST_SETTINGS: Mapping[str, str] = {
    "TIERSCALE_CONTROL_INTERVAL_S": "1",
    "TIERSCALE_METRICS_WINDOW_S": "10",
    "TIERSCALE_RATE_HISTORY_S": "20",
    "TIERSCALE_STALE_AFTER_S": "5",
    "TIERSCALE_PROMETHEUS_TIMEOUT_S": "2",
    "TIERSCALE_ENVOY_SETTLE_S": "0.5",
    "TIERSCALE_SHUTDOWN_GRACE_S": "10",
    "TIERSCALE_PEERING_LIFETIME_S": "10",
    "TIERSCALE_KUBERNETES_TIMEOUT_S": "5",
    "TIERSCALE_LOG_FORMAT": "json",
    "TIERSCALE_STATUS_REFRESH_S": "2",
}
"""Compressed time: one decision per second on 10 s windows (the testbed scrapes every
1 s), 20 s of rate history for the forecast (its burst quantile then forgets a step
after ~20 s, as 15 minutes would in production); a replica that stops renewing its
peering entry is dead after 10 s."""


def testbed_settings(
    kubeconfig: Path,
    namespace: str,
    prometheus: TestbedPrometheus,
    envoy: TestbedEnvoy,
) -> dict[str, str]:
    """The environment of an operator that manages `namespace` on the testbed."""
    return {
        **FAST_SETTINGS,
        "KUBECONFIG": str(kubeconfig),
        "TIERSCALE_NAMESPACES": namespace,
        "TIERSCALE_OPERATOR_NAMESPACE": namespace,
        "TIERSCALE_PEERING_NAME": f"tierscale-{namespace}",
        "TIERSCALE_PROMETHEUS_URL": prometheus.url,
        "TIERSCALE_ENVOY_CONFIGMAP": f"{envoy.namespace}/{envoy.configmap_name}",
        "TIERSCALE_ENVOY_XDS_DIR": str(envoy.root),
        "TIERSCALE_ENVOY_POOL_ENDPOINTS": f"eds:{envoy.eds_dir}",
        "TIERSCALE_ENVOY_LISTENER_ADDRESS": envoy.settings.address,
        "TIERSCALE_ENVOY_LISTENER_PORT": str(envoy.settings.port),
        "TIERSCALE_ENVOY_IDLE_TIMEOUT_S": f"{envoy.settings.idle_timeout_s:g}",
        "TIERSCALE_ENVOY_BINARY": str(envoy_binary()),
    }


def wait_until(
    check: Callable[[], T | None], timeout_s: float, what: str, poll_s: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


@dataclass
class OperatorProcess:
    """One `tierscale run` process; `log_path` holds its JSON lines."""

    root: Path
    env: dict[str, str]
    name: str = "operator"
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def record_dir(self) -> Path:
        return Path(self.env.get("TIERSCALE_RECORD_DIR") or self.root / f"{self.name}-records")

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, ready_timeout_s: float = 60.0, **overrides: str) -> OperatorProcess:
        env = {**os.environ, **self.env, **overrides, "TIERSCALE_METRICS_PORT": str(self.port)}
        env.setdefault("TIERSCALE_RECORD_DIR", str(self.record_dir))
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tierscale.cli", "run"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        wait_until(self._ready, ready_timeout_s, f"{self.name} /readyz (log: {self.log_path})")
        return self

    def _ready(self) -> bool | None:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self._proc.returncode}:\n{self.tail()}")
        code, _ = self.probe("/readyz")
        return True if code == 200 else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait (the running tick finishes); SIGKILL if it does not exit."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: no goodbye, no finished tick (a crash or an OOM kill)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def probe(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError as err:
            return 0, str(err)

    def metrics_text(self) -> str:
        code, text = self.probe("/metrics")
        if code != 200:
            raise RuntimeError(f"{self.name} /metrics answered {code}: {text}")
        return text

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON line of the log so far (other lines are skipped)."""
        out: list[dict[str, Any]] = []
        if not self.log_path.exists():
            return out
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:
                    continue
        return out

    def decisions(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("message") == "decision"]

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def metric_values(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of `name` in Prometheus text format."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, brace, rest = head.partition("{")
        if metric != name:
            continue
        labels: dict[str, str] = {}
        if brace:
            for part in rest.rstrip("}").split('",'):
                key, _, val = part.partition('="')
                if key:
                    labels[key.strip(",")] = val.rstrip('"')
        yield labels, float(value)


def slotier(
    name: str,
    namespace: str,
    *,
    deployment: str,
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
    ttft: str = "500ms",
    tpot: str = "50ms",
    percentile: float = 99.0,
    attainment: float = 0.99,
    priority: int = 0,
    min_replicas: int = 1,
    max_replicas: int = 4,
    cold_start: str = "5s",
    stabilization: str = "15s",
    max_scale_up: int = 4,
    borrow: bool = True,
    lend: bool = True,
) -> dict[str, Any]:
    """An SLOTier manifest on compressed time (cold start and stabilisation in seconds)."""
    return {
        "apiVersion": "tierscale.dev/v1alpha1",
        "kind": "SLOTier",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": model,
            "slo": {
                "ttft": ttft,
                "tpot": tpot,
                "percentile": percentile,
                "attainment": attainment,
            },
            "priority": priority,
            "pool": {
                "deployment": deployment,
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
            },
            "routing": {"value": name},
            "spillover": {"borrow": borrow, "lend": lend},
            "scaling": {
                "coldStart": cold_start,
                "scaleDownStabilization": stabilization,
                "maxScaleUpReplicas": max_scale_up,
            },
        },
    }


class BackgroundLoad:
    """The load generator as a background process (`finish()` returns its summary), for
    tests that act on the cluster while load runs."""

    def __init__(self, target: str, json_path: Path, *args: str) -> None:
        self.json_path = json_path
        cmd = [sys.executable, "-m", "tierscale_testbed.loadgen", "--target", target]
        self.started_s = time.time()
        self._proc = subprocess.Popen(
            [*cmd, *args, "--json", str(json_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def finish(self, timeout_s: float = 180.0) -> dict[str, Any]:
        out, _ = self._proc.communicate(timeout=timeout_s)
        if not self.json_path.exists():
            raise RuntimeError(f"loadgen failed ({self._proc.returncode}):\n{out.decode()}")
        summary: dict[str, Any] = json.loads(self.json_path.read_text())
        summary["exit_code"] = self._proc.returncode
        summary["table"] = out.decode()
        return summary

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate(timeout=10)  # reap it and close its pipe


def tier_summary(summary: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """One tier's row of a load generator summary."""
    for row in summary.get("tiers", []):
        if row.get("tier") == tier:
            return dict(row)
    raise KeyError(f"no tier {tier!r} in the load generator summary: {summary.get('tiers')}")


def decision_time(line: Mapping[str, Any]) -> float:
    """Unix time of a decision line (its record id ends in `@<now_s>`)."""
    return float(str(line["record_id"]).rpartition("@")[2])


def condition(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The status condition `kind` of an object ({} if it has none yet)."""
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def first(
    lines: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    return next((line for line in lines if predicate(line)), None)


def tier_of(line: Mapping[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """One tier's entry of a decision line ({} if absent)."""
    return dict((line.get("tiers") or {}).get(f"{namespace}/{name}") or {})


def deploy(
    cluster: Any,
    simvllm: Any,
    namespace: str,
    replicas_by_deployment: Mapping[str, int],
    tiers: list[dict[str, Any]],
    cold_start_s: float = 3.0,
) -> None:
    """vLLM Deployments (serving before the SLOTiers exist), then the SLOTiers."""
    from tierscale_testbed.simvllm import manifests

    cluster.apply(
        [
            manifests.vllm_deployment(
                name, namespace, tier=name, replicas=replicas, cold_start_s=cold_start_s
            )
            for name, replicas in replicas_by_deployment.items()
        ]
    )
    for name, replicas in replicas_by_deployment.items():
        if replicas:
            simvllm.wait_for_serving(namespace, name, replicas, timeout_s=60)
    cluster.apply(tiers)


def load_args(pattern: str, seconds: float, mix: str, seed: int = 1) -> list[str]:
    """Load generator arguments: short prompts (1000 tokens, 50 out) unless a test needs
    more, bounded by `seconds`."""
    return [
        "--pattern",
        pattern,
        "--prompt-tokens",
        "1000",
        "--output-tokens",
        "50",
        "--tier-mix",
        mix,
        "--max-duration-s",
        f"{seconds:g}",
        "--max-requests",
        "5000",
        "--seed",
        str(seed),
    ]


def spec_replicas(cluster: Any, namespace: str, name: str) -> tuple[int, int]:
    """(spec.replicas, status.readyReplicas) of a Deployment."""
    body = cluster.get_json("deployment", name, "-n", namespace)
    return int(body["spec"].get("replicas", 0)), int(body["status"].get("readyReplicas", 0))


def wait_for_tier(
    operator: OperatorProcess,
    namespace: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    what: str,
    after_s: float = 0.0,
) -> tuple[float, dict[str, Any]]:
    """(time, entry) of the first decision at or after `after_s` whose entry for the tier
    satisfies `predicate`."""

    def check() -> tuple[float, dict[str, Any]] | None:
        for line in operator.decisions():
            at = decision_time(line)
            entry = tier_of(line, namespace, name)
            if at >= after_s and entry and predicate(entry):
                return at, entry
        return None

    return wait_until(check, timeout_s, f"{what} (log: {operator.log_path})")
