"""`/metrics`, `/healthz` and `/readyz` on one port, served from a thread.

- `/healthz` (liveness): kopf's event loop answers within `loop_timeout_s`. A loop that
  does not (a handler blocking it) is what a restart fixes; a slow tick is not, since
  ticks run in worker threads.
- `/readyz` (readiness): the operator has started, is not shutting down, and the last
  tick could read the cluster. A standby replica paused by peering is ready: it is
  healthy and would act the moment the active one goes.
- `/metrics`: the exporter's registry in Prometheus' text format 0.0.4.

Each answer is a short text saying why, so `kubectl describe pod` shows the reason.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tierscale.handlers.exporter import CONTENT_TYPE, Exporter

Check = Callable[[], tuple[bool, str]]


def loop_alive(loop: asyncio.AbstractEventLoop, timeout_s: float) -> tuple[bool, str]:
    """Whether `loop` runs a trivial coroutine within `timeout_s` (call from another thread)."""
    if loop.is_closed():
        return False, "event loop closed"
    future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop)
    try:
        future.result(timeout=timeout_s)
    except TimeoutError:
        future.cancel()
        return False, f"event loop did not answer within {timeout_s:g} s"
    return True, "ok"


class ProbeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: str, port: int, exporter: Exporter, healthy: Check, ready: Check
    ) -> None:
        super().__init__((address, port), _Handler)
        self.exporter = exporter
        self.healthy = healthy
        self.ready = ready
        self._thread = threading.Thread(target=self.serve_forever, name="probes", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: ProbeServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.exporter.render(), CONTENT_TYPE)
        elif path in ("/healthz", "/readyz"):
            check = self.server.healthy if path == "/healthz" else self.server.ready
            try:
                ok, why = check()
            except Exception as err:  # a probe must answer, whatever broke
                ok, why = False, f"probe failed: {err!r}"
            self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
