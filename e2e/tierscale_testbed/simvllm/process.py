"""Run the simulated vLLM process as a child and stop it reliably.

The child dies with its parent (PR_SET_PDEATHSIG), so a crashed pytest leaves no server
behind; ``stop()`` sends SIGTERM (every pod drains, as in a real rollout) and kills after
a bounded grace.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tierscale_testbed.simvllm import discovery


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class SimVllmProcess:
    """Handle on a running simulator: its discovery files and its log."""

    process: subprocess.Popen[bytes]
    discovery_dir: Path
    log_path: Path

    def pools(self) -> dict[str, discovery.Pool]:
        return discovery.read_pools(self.discovery_dir)

    def targets(self) -> list[discovery.ServedPod]:
        return discovery.read_targets(self.discovery_dir)

    def serving(self, namespace: str, deployment: str) -> tuple[discovery.Endpoint, ...]:
        pool = self.pools().get(f"{namespace}/{deployment}")
        return () if pool is None else pool.endpoints

    def wait_for_serving(
        self, namespace: str, deployment: str, count: int, timeout_s: float = 60.0
    ) -> tuple[discovery.Endpoint, ...]:
        """Wait until exactly ``count`` pods of the Deployment take requests."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            endpoints = self.serving(namespace, deployment)
            if len(endpoints) == count:
                return endpoints
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{namespace}/{deployment}: {len(endpoints)} serving pods, wanted {count} "
                    f"after {timeout_s:g} s; log: {self.log_path}"
                )
            time.sleep(0.1)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"simulated vLLM exited with {self.process.returncode}; log: {self.log_path}\n"
                + self.log_path.read_text()[-3000:]
            )

    def stop(self, grace_s: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(
    kubeconfig: Path | None,
    discovery_dir: Path,
    log_path: Path,
    *,
    extra_args: Sequence[str] = (),
    startup_timeout_s: float = 30.0,
) -> SimVllmProcess:
    """Start the simulator and wait until it has published its (maybe empty) pod map.

    ``kubeconfig`` None only makes sense with ``--standalone-pods N`` in ``extra_args``.
    """
    discovery_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "tierscale_testbed.simvllm",
        *(["--kubeconfig", str(kubeconfig)] if kubeconfig is not None else []),
        "--discovery-dir",
        str(discovery_dir),
        *extra_args,
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
    handle = SimVllmProcess(proc, discovery_dir, log_path)
    deadline = time.monotonic() + startup_timeout_s
    while not (discovery_dir / discovery.ENDPOINTS_NAME).exists():
        try:
            handle.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulated vLLM did not start; log: {log_path}")
        except BaseException:
            handle.stop(grace_s=5)
            raise
        time.sleep(0.05)
    return handle


@contextlib.contextmanager
def running(
    kubeconfig: Path | None, discovery_dir: Path, log_path: Path, *, extra_args: Sequence[str] = ()
) -> Iterator[SimVllmProcess]:
    handle = start(kubeconfig, discovery_dir, log_path, extra_args=extra_args)
    try:
        yield handle
    finally:
        handle.stop()
