"""A real Kubernetes control plane with fake GPU nodes, as local processes, for e2e tests.

kwokctl's binary runtime runs etcd, kube-apiserver (RBAC and admission on),
kube-controller-manager, kube-scheduler and the kwok controller from the version-keyed cache
(``tierscale_testbed.binaries``). kwok plays the kubelets: it makes pods Running, then Ready
after a cold start, and removes deleted pods after a drain delay (see ``kwok/stages.yaml``).
The real scheduler places pods by their ``nvidia.com/gpu`` requests, so pods beyond GPU
capacity stay Pending exactly as on a real cluster.

Each cluster lives in its own run directory ``<cache>/runs/<name>`` holding a ``state.json``
with the owning process id. kwokctl detaches its processes (setsid), so a killed test run
would leak them; every start reaps runs whose owner has died, and ``cluster-down`` does the
same by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import config as k8s_config
from kubernetes.client import ApiClient

from tierscale_testbed import kwok_config
from tierscale_testbed.binaries import bin_dir, binary_path, cache_dir, require_binaries

T = TypeVar("T")

POLL_INTERVAL_S = 0.2
KEPT_LOG_RUNS = 10


class CommandError(subprocess.CalledProcessError):
    """A failed kubectl/helm/kwokctl call whose message carries stderr, which is where the
    API server's reason is; the stock CalledProcessError message drops it."""

    def __str__(self) -> str:
        cmd = " ".join(str(c) for c in self.cmd)
        return f"`{cmd}` exited {self.returncode}:\n{self.stderr or ''}{self.stdout or ''}"


def wait_for(predicate: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll until ``predicate`` returns something truthy and return it.

    A functional deadline, not a speed assertion: pick a generous ``timeout_s``. The last
    exception raised by the predicate (if any) is chained for debugging.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as error:  # the predicate may race object creation
            last_error = error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}") from (
                last_error
            )
        time.sleep(POLL_INTERVAL_S)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def unique_cluster_name() -> str:
    """Short (kwokctl prefixes it) and unique per run, so parallel sessions never collide."""
    return f"ts-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class ClusterConfig:
    """Shape of the fake GPU fleet; each field can be set from a ``TIERSCALE_*`` variable."""

    name: str = field(default_factory=unique_cluster_name)
    gpu_nodes: int = 8
    gpus_per_node: int = 8
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"
    default_cold_start_s: float = 3.0
    default_termination_s: float = 2.0
    ready_timeout_s: float = 120.0

    @classmethod
    def from_env(cls) -> ClusterConfig:
        base = cls()
        return cls(
            gpu_nodes=_env_int("TIERSCALE_GPU_NODES", base.gpu_nodes),
            gpus_per_node=_env_int("TIERSCALE_GPUS_PER_NODE", base.gpus_per_node),
            gpu_product=os.environ.get("TIERSCALE_GPU_PRODUCT", base.gpu_product),
            default_cold_start_s=_env_float("TIERSCALE_COLD_START_S", base.default_cold_start_s),
            default_termination_s=_env_float("TIERSCALE_TERMINATION_S", base.default_termination_s),
        )


def runs_dir() -> Path:
    return cache_dir() / "runs"


def logs_root() -> Path:
    return cache_dir() / "logs"


@dataclass
class Cluster:
    """Handle on a running testbed cluster. Tests use it through the ``cluster`` fixture."""

    config: ClusterConfig
    run_dir: Path
    kubeconfig: Path
    server: str
    bin_dir: Path
    binaries: dict[str, Path]

    # -- clients ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for child tools: this cluster only, and Helm state kept in the run
        directory so nothing leaks into (or is read from) the user's home."""
        helm_home = self.run_dir / "helm"
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }

    def run_tool(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout_s: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.binaries[tool]), *args]
        done = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env, timeout=timeout_s
        )
        if check and done.returncode != 0:
            raise CommandError(done.returncode, cmd, done.stdout, done.stderr)
        return done

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return self.run_tool("kubectl", *args, check=check, input=input, timeout_s=timeout_s)

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout_s: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        return self.run_tool("helm", *args, check=check, input=input, timeout_s=timeout_s)

    def apply(self, docs: Sequence[dict[str, Any]], *extra_args: str) -> str:
        """``kubectl apply`` of in-memory manifests; returns kubectl's output."""
        text = yaml.safe_dump_all(list(docs), sort_keys=False)
        return self.kubectl("apply", "-f", "-", *extra_args, input=text).stdout

    def api_client(self) -> ApiClient:
        """A fresh client for this cluster; never the process-global kubeconfig, which
        would point at whatever cluster the developer's shell uses."""
        client: ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return client

    def wait_for(self, predicate: Callable[[], T | None], timeout_s: float, what: str) -> T:
        return wait_for(predicate, timeout_s, what)

    # -- introspection ---------------------------------------------------------------------
    @property
    def kwok_workdir(self) -> Path:
        return self.run_dir / "kwok"

    @property
    def logs_dir(self) -> Path:
        """Live component logs (etcd, kube-apiserver, ..., kwok-controller)."""
        return self.kwok_workdir / "clusters" / self.config.name / "logs"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: requests made as a ServiceAccount, JSON lines
        (policy `kwok/audit-policy.yaml`)."""
        return self.logs_dir / "audit.log"

    @property
    def total_gpus(self) -> int:
        return self.config.gpu_nodes * self.config.gpus_per_node

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def ready_node_count(self) -> int:
        nodes = self.get_json("nodes")["items"]
        return sum(
            1
            for n in nodes
            for c in n.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        )

    # -- namespaces ------------------------------------------------------------------------
    def create_namespace(self, name: str, timeout_s: float = 60.0) -> str:
        """Create a namespace and wait for its default ServiceAccount: with admission on, pods
        are rejected until kube-controller-manager has created it."""
        self.kubectl("create", "namespace", name)
        self.wait_for(
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
                == 0
            ),
            timeout_s,
            f"default ServiceAccount in namespace {name}",
        )
        return name

    def delete_namespace(self, name: str) -> None:
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        stop_run(self.run_dir)


# -- run directories ------------------------------------------------------------------------


def _state_path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs_in(pid: int, run_dir: Path) -> bool:
    """Whether ``pid`` is still one of this run's processes: every component's command line
    names a path inside the run directory. Guards against a recycled pid of an orphan run
    belonging, by now, to someone else's process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(run_dir).encode() in cmdline


def _component_pids(run_dir: Path) -> list[int]:
    pids: list[int] = []
    for pid_file in run_dir.glob("kwok/clusters/*/pids/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            if _runs_in(pid, run_dir):
                pids.append(pid)
    return pids


def _kill_pids(pids: list[int], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever is still alive after ``grace_s``. Only pids recorded
    by kwokctl for this run are touched, never processes found by name."""
    alive = [p for p in pids if _pid_alive(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        alive = [p for p in alive if _pid_alive(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _keep_logs(run_dir: Path, name: str) -> Path | None:
    """Copy component logs out of the run directory before it is deleted, pruning old runs,
    so a failed CI run can still be debugged after teardown."""
    source = run_dir / "kwok" / "clusters" / name / "logs"
    if not source.is_dir():
        return None
    target = logs_root() / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    old = sorted(logs_root().iterdir(), key=lambda p: p.stat().st_mtime)[:-KEPT_LOG_RUNS]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return target


def stop_run(run_dir: Path) -> None:
    """Tear down one run: kwokctl delete, then kill any recorded pid it missed, then remove
    the directory. Safe to call twice and on half-started runs."""
    if not run_dir.exists():
        return
    name = run_dir.name
    state = _read_state(run_dir)
    kwokctl_path = Path(state["binaries"]["kwokctl"]) if state else binary_path("kwokctl")
    pids = _component_pids(run_dir)
    with contextlib.suppress(OSError):
        _keep_logs(run_dir, name)
    if kwokctl_path.exists() and (run_dir / "kwok").exists():
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [str(kwokctl_path), "delete", "cluster", "--name", name],
                env={**os.environ, "KWOK_WORKDIR": str(run_dir / "kwok")},
                capture_output=True,
                text=True,
                timeout=60,
            )
    _kill_pids(pids)
    shutil.rmtree(run_dir, ignore_errors=True)


def _read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(_state_path(run_dir).read_text())
    except (OSError, ValueError):
        return None
    return state


def list_runs() -> list[Path]:
    root = runs_dir()
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def is_orphan(run_dir: Path) -> bool:
    """A test run's cluster whose pytest process is gone. Manual clusters (owner None) and
    clusters of live sessions (other engineers, other CI jobs) are never orphans."""
    state = _read_state(run_dir)
    if state is None:
        # Half-written run: an orphan only once it is old enough not to be starting now.
        return time.time() - run_dir.stat().st_mtime > 300
    owner = state.get("owner_pid")
    return owner is not None and not _pid_alive(int(owner))


def reap_orphans() -> list[str]:
    reaped = []
    for run_dir in list_runs():
        if is_orphan(run_dir):
            stop_run(run_dir)
            reaped.append(run_dir.name)
    return reaped


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _server_of(kubeconfig: Path) -> str:
    doc = yaml.safe_load(kubeconfig.read_text())
    server: str = doc["clusters"][0]["cluster"]["server"]
    return server


def start_cluster(config: ClusterConfig | None = None, *, owner_pid: int | None = None) -> Cluster:
    """Create a cluster and return once every GPU node is Ready.

    ``owner_pid`` is the process whose death makes the cluster an orphan (the pytest
    session); None marks a cluster started by hand, removed only by ``cluster-down``.
    """
    config = config or ClusterConfig.from_env()
    binaries = require_binaries()
    reap_orphans()
    run_dir = runs_dir() / config.name
    run_dir.mkdir(parents=True)
    kubeconfig = run_dir / "kubeconfig"
    state = {
        "name": config.name,
        "owner_pid": owner_pid,
        "config": asdict(config),
        "binaries": {k: str(v) for k, v in binaries.items()},
        "kubeconfig": str(kubeconfig),
    }
    _state_path(run_dir).write_text(json.dumps(state, indent=2))
    config_file = run_dir / "kwokctl.yaml"
    docs = [
        kwok_config.kwokctl_configuration(binaries),
        *kwok_config.stages(config.default_cold_start_s, config.default_termination_s),
    ]
    config_file.write_text(kwok_config.dump_all(docs))
    cluster = Cluster(
        config=config,
        run_dir=run_dir,
        kubeconfig=kubeconfig,
        server="",
        bin_dir=bin_dir(),
        binaries=binaries,
    )
    try:
        _create(cluster, config_file)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def _create_lock() -> Iterator[None]:
    """kwokctl picks its ports by probing for free ones, so two clusters created at the same
    moment (parallel sessions on one machine) could pick the same ports; creating one at a
    time closes that race, as kwokctl returns only once its processes listen."""
    runs_dir().mkdir(parents=True, exist_ok=True)
    with open(runs_dir() / ".create.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _create(cluster: Cluster, config_file: Path) -> None:
    config = cluster.config
    cmd = [
        str(cluster.binaries["kwokctl"]),
        "create",
        "cluster",
        "--name",
        config.name,
        "--config",
        str(config_file),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--timeout",
        f"{int(config.ready_timeout_s)}s",
        "--wait",
        f"{int(config.ready_timeout_s)}s",
    ]
    env = {**os.environ, "KWOK_WORKDIR": str(cluster.kwok_workdir)}
    with _create_lock():
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=config.ready_timeout_s + 30
        )
    if done.returncode != 0:
        logs = "\n".join(
            f"--- {log.name}\n{_tail(log)}" for log in sorted(cluster.logs_dir.glob("*.log"))
        )
        raise CommandError(done.returncode, cmd, done.stdout, done.stderr + "\n" + logs)
    cluster.server = _server_of(cluster.kubeconfig)
    nodes = kwok_config.gpu_nodes(config.gpu_nodes, config.gpus_per_node, config.gpu_product)
    cluster.apply(nodes)
    cluster.wait_for(
        lambda: cluster.ready_node_count() >= config.gpu_nodes,
        config.ready_timeout_s,
        f"{config.gpu_nodes} kwok GPU nodes Ready",
    )


def attach(name: str) -> Cluster:
    """Handle on a cluster started earlier (e.g. by ``make cluster-up``)."""
    run_dir = runs_dir() / name
    state = _read_state(run_dir)
    if state is None:
        raise FileNotFoundError(f"no testbed cluster {name!r} under {runs_dir()}")
    kubeconfig = Path(state["kubeconfig"])
    return Cluster(
        config=ClusterConfig(**state["config"]),
        run_dir=run_dir,
        kubeconfig=kubeconfig,
        server=_server_of(kubeconfig),
        bin_dir=bin_dir(),
        binaries={k: Path(v) for k, v in state["binaries"].items()},
    )


@contextlib.contextmanager
def running_cluster(config: ClusterConfig | None = None) -> Iterator[Cluster]:
    """A cluster owned by this process, stopped on exit whatever happened."""
    cluster = start_cluster(config, owner_pid=os.getpid())
    try:
        yield cluster
    finally:
        cluster.stop()


# -- command line (scripts/testbed/cluster-up.sh, cluster-down.sh) ---------------------------


def _cmd_up(args: argparse.Namespace) -> int:
    config = ClusterConfig.from_env()
    if args.name:
        config = ClusterConfig(**{**asdict(config), "name": args.name})
    started = time.monotonic()
    cluster = start_cluster(config, owner_pid=None)
    print(f"cluster {config.name} ready in {time.monotonic() - started:.1f} s")
    print(f"server:  {cluster.server}")
    print(f"logs:    {cluster.logs_dir}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    print(f"export TIERSCALE_CLUSTER={config.name}   # e2e tests then reuse this cluster")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    """Stop the named clusters, or every hand-started cluster plus every orphan; clusters of
    live pytest sessions are left alone."""
    targets = [runs_dir() / n for n in args.names] if args.names else list_runs()
    for run_dir in targets:
        state = _read_state(run_dir)
        manual = state is not None and state.get("owner_pid") is None
        if args.names or manual or is_orphan(run_dir):
            stop_run(run_dir)
            print(f"stopped {run_dir.name}")
    return 0


def _cmd_list(_: argparse.Namespace) -> int:
    for run_dir in list_runs():
        state = _read_state(run_dir) or {}
        owner = state.get("owner_pid")
        kind = "manual" if owner is None else f"owner pid {owner}"
        print(f"{run_dir.name}\t{kind}\t{'orphan' if is_orphan(run_dir) else 'live'}")
    return 0


def _cmd_render(_: argparse.Namespace) -> int:
    config = ClusterConfig.from_env()
    docs = [
        kwok_config.kwokctl_configuration(require_binaries()),
        *kwok_config.stages(config.default_cold_start_s, config.default_termination_s),
        *kwok_config.gpu_nodes(config.gpu_nodes, config.gpus_per_node, config.gpu_product),
    ]
    sys.stdout.write(kwok_config.dump_all(docs))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tierscale_testbed.cluster")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a cluster that lives until `down`")
    up.add_argument("--name", help="cluster name (default: unique)")
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="stop hand-started and orphaned clusters")
    down.add_argument("names", nargs="*", help="stop exactly these clusters")
    down.set_defaults(func=_cmd_down)
    sub.add_parser("list", help="list clusters").set_defaults(func=_cmd_list)
    sub.add_parser("render", help="print kwokctl config, stages and nodes").set_defaults(
        func=_cmd_render
    )
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
