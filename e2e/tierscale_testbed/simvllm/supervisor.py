"""Keep one PodServer per Ready vLLM pod and publish the pod -> port map.

Invariant after every reconcile: each pod that should serve has a running server; each
server whose pod no longer should serve (terminating, not Ready, gone) is draining; the
discovery files list exactly the servers whose port is open, and mark draining ones as
not serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tierscale_predictor import profiles
from tierscale_testbed.simvllm import discovery, pod_server, pod_watch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Served:
    view: pod_watch.PodView
    server: pod_server.PodServer
    drain_task: asyncio.Task[None] | None = None


class Supervisor:
    """Reconciles pod views into running pod servers."""

    def __init__(
        self,
        *,
        discovery_dir: Path,
        default_config: pod_server.PodConfig,
        profile_loader: Callable[[str], profiles.StepProfile] = profiles.load_profile,
    ) -> None:
        self._dir = discovery_dir
        self._default = default_config
        self._load_profile = profile_loader
        self._served: dict[str, _Served] = {}  # pod uid -> its server
        self._publish()

    def _config_for(self, view: pod_watch.PodView) -> pod_server.PodConfig:
        config = self._default
        if view.model_name:
            config = replace(config, model_name=view.model_name)
        if view.profile:
            config = replace(config, profile=self._load_profile(view.profile))
        if view.max_model_len is not None:
            config = replace(config, max_model_len=view.max_model_len)
        if view.max_num_seqs is not None:
            config = replace(config, max_num_seqs=view.max_num_seqs)
        if view.max_num_batched_tokens is not None:
            config = replace(config, max_num_batched_tokens=view.max_num_batched_tokens)
        return config

    async def reconcile(self, views: Iterable[pod_watch.PodView]) -> None:
        wanted = {v.uid: v for v in views if v.should_serve}
        for uid, view in wanted.items():
            if uid not in self._served:
                server = await self._start(view)
                if server is None:
                    continue
                log.info("serving %s/%s on port %d", view.namespace, view.name, server.port)
                self._served[uid] = _Served(view, server)
        for uid, served in self._served.items():
            if uid not in wanted and served.drain_task is None:
                log.info("draining %s/%s", served.view.namespace, served.view.name)
                served.drain_task = asyncio.create_task(self._drain(uid, served))
        self._publish()

    async def _start(self, view: pod_watch.PodView) -> pod_server.PodServer | None:
        """A running server for the pod, or None (logged) if it cannot be served: an
        unknown sim-profile annotation must not take the other pods down; retried on
        the next reconcile."""
        try:
            server = pod_server.PodServer(self._config_for(view))
        except Exception:
            log.exception("cannot serve %s/%s", view.namespace, view.name)
            return None
        try:
            await server.start()
        except Exception:
            log.exception("cannot start %s/%s", view.namespace, view.name)
            await server.stop()
            return None
        return server

    async def _drain(self, uid: str, served: _Served) -> None:
        await served.server.drain()
        del self._served[uid]
        log.info("closed %s/%s", served.view.namespace, served.view.name)
        self._publish()

    def _publish(self) -> None:
        discovery.write(
            self._dir,
            [
                discovery.ServedPod(
                    namespace=s.view.namespace,
                    pod=s.view.name,
                    deployment=s.view.deployment,
                    tier=s.view.tier,
                    model_name=s.server.config.model_name,
                    port=s.server.port,
                    serving=s.drain_task is None,
                )
                for s in self._served.values()
            ],
        )

    async def shutdown(self) -> None:
        """Drain every pod (as if all were deleted) and wait for the ports to close."""
        await self.reconcile([])
        tasks = [s.drain_task for s in self._served.values() if s.drain_task is not None]
        for task in tasks:
            with contextlib.suppress(Exception):
                await task


async def run(
    lister: pod_watch.PodLister,
    supervisor: Supervisor,
    *,
    relist_interval_s: float = 2.0,
    stop: asyncio.Event,
) -> None:
    """Watch-kicked, periodically re-listed reconcile loop until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    kick = asyncio.Event()
    # A daemon thread, not the default executor: a blocked watch must not delay exit.
    watcher = threading.Thread(
        target=lister.watch_kicks, args=(loop, kick), name="pod-watch", daemon=True
    )
    watcher.start()
    try:
        while not stop.is_set():
            kick.clear()
            try:
                views = await asyncio.to_thread(lister.list_pods)
            except Exception:  # API hiccup: keep serving what we have, try again
                log.exception("listing pods failed")
            else:
                await supervisor.reconcile(views)
            waiters = [asyncio.create_task(kick.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiters, timeout=relist_interval_s, return_when="FIRST_COMPLETED")
            for w in waiters:
                w.cancel()
            await asyncio.sleep(0.05)  # coalesce bursts of watch events into one list
    finally:
        lister.close()
        await supervisor.shutdown()
