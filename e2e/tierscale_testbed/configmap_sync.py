"""Reproduce kubelet's ConfigMap volume on the local disk, fed by a real API server watch.

Why reproduce it: Envoy in a cluster reads its xDS files from a ConfigMap volume, and the
way kubelet updates that volume is what makes live reload work (and what makes `subPath`
mounts never update). Kubelet's AtomicWriter writes the new payload into a fresh
timestamped directory, points a `..data_tmp` symlink at it and renames that over `..data`
(one atomic move, which Envoy's `watched_directory` sees), while every visible file name is
a stable symlink through `..data`. Only a volume whose projected content changed is
rewritten, so an unrelated key change does not wake its watchers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch

log = logging.getLogger(__name__)

DATA_DIR_LINK = "..data"
_TMP_LINK = "..data_tmp"


@dataclass(frozen=True, slots=True)
class Mount:
    """One volume mount of the ConfigMap: a directory and the keys projected into it."""

    directory: Path
    keys: tuple[str, ...] | None = None
    """Like `items:` in a pod spec; None projects every key."""

    def project(self, data: Mapping[str, str]) -> dict[str, str]:
        if self.keys is None:
            return dict(data)
        return {k: data[k] for k in self.keys if k in data}


def read_volume(directory: Path) -> dict[str, str]:
    """The payload currently visible through `..data` ({} before the first write)."""
    data_dir = directory / DATA_DIR_LINK
    if not data_dir.exists():
        return {}
    return {p.name: p.read_text() for p in data_dir.iterdir() if p.is_file()}


def write_volume(directory: Path, payload: Mapping[str, str]) -> bool:
    """Make `payload` visible in `directory` the way kubelet does; False when unchanged."""
    if read_volume(directory) == dict(payload):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    old_target = _link_target(directory / DATA_DIR_LINK)
    # Kubelet's AtomicWriter: a fresh, uniquely named "..<UTC time>.<random>" directory.
    prefix = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    new_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    new_dir.chmod(0o755)
    for key, content in payload.items():
        (new_dir / key).write_text(content)
    tmp_link = directory / _TMP_LINK
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(new_dir.name)
    os.replace(tmp_link, directory / DATA_DIR_LINK)
    _update_user_links(directory, set(payload))
    if old_target is not None:
        shutil.rmtree(directory / old_target, ignore_errors=True)
    return True


def _link_target(link: Path) -> str | None:
    return os.readlink(link) if link.is_symlink() else None


def _update_user_links(directory: Path, keys: set[str]) -> None:
    for entry in directory.iterdir():
        if entry.name.startswith("..") or not entry.is_symlink():
            continue
        if entry.name not in keys:
            entry.unlink()
    for key in keys:
        link = directory / key
        if not link.is_symlink():
            link.symlink_to(f"{DATA_DIR_LINK}/{key}")


BeforeSwap = Callable[[Mapping[str, str]], None]
"""Called with the full ConfigMap data before any mount is rewritten."""


class ConfigMapVolumeSync:
    """Watches one ConfigMap and keeps its mounts current, in a background thread.

    Mounts are rewritten in the given order, so an Envoy layout can put CDS before RDS
    (a route may only name a cluster Envoy already has).
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        mounts: Sequence[Mount],
        before_swap: BeforeSwap | None = None,
        watch_timeout_s: int = 2,
    ) -> None:
        self._core = client.CoreV1Api(api_client)
        self._namespace = namespace
        self._name = name
        self._mounts = tuple(mounts)
        self._before_swap = before_swap
        self._watch_timeout_s = watch_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0
        """Number of mount rewrites so far (for tests and logs)."""
        self.last_error: str | None = None

    def apply(self, data: Mapping[str, str]) -> int:
        """Project `data` into every mount; returns how many mounts changed."""
        if self._before_swap is not None:
            self._before_swap(data)
        changed = sum(write_volume(m.directory, m.project(data)) for m in self._mounts)
        self.swaps += changed
        return changed

    def sync_now(self) -> str:
        """One GET + apply; returns the resourceVersion seen. Raises if the map is missing."""
        config_map = self._core.read_namespaced_config_map(self._name, self._namespace)
        self.apply(config_map.data or {})
        metadata = config_map.metadata
        return "" if metadata is None else str(metadata.resource_version or "")

    def start(self) -> None:
        resource_version = self.sync_now()
        self._thread = threading.Thread(
            target=self._run, args=(resource_version,), name=f"cm-sync-{self._name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._watch_timeout_s + 5)
            self._thread = None

    def __enter__(self) -> ConfigMapVolumeSync:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self, resource_version: str) -> None:
        while not self._stop.is_set():
            try:
                resource_version = self._watch_once(resource_version)
            except Exception as error:  # the loop must outlive API hiccups (and test teardown)
                self.last_error = repr(error)
                log.warning("configmap %s/%s sync: %r", self._namespace, self._name, error)
                time.sleep(0.2)
                with contextlib.suppress(Exception):
                    resource_version = self.sync_now()

    def _watch_once(self, resource_version: str) -> str:
        """One server-side-bounded watch; short, so `stop()` is honoured within seconds."""
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self._core.list_namespaced_config_map,
            self._namespace,
            field_selector=f"metadata.name={self._name}",
            resource_version=resource_version,
            timeout_seconds=self._watch_timeout_s,
            allow_watch_bookmarks=True,
        )
        for event in stream:
            if self._stop.is_set():
                break
            obj = event["object"]
            resource_version = str(obj.metadata.resource_version)
            if event["type"] in ("ADDED", "MODIFIED"):
                self.apply(obj.data or {})
        return resource_version
