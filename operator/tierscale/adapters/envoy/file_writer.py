"""Publish a routing table as files in Envoy's watched directories.

Envoy reloads a file subscription when a file is *moved* into its watched directory, so
each file is written to a temp name beside it and renamed over the old one: Envoy never
reads half a file. Unchanged files are not rewritten, so a weight change touches RDS only
and never drains the listener or re-warms clusters. New clusters go out first, on their
own (see `staging`).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tierscale.adapters.envoy import routing, staging, validation, xds


class FileRoutingWriter:
    """`RoutingWriter` for an Envoy that reads LDS/CDS/RDS from local directories."""

    def __init__(
        self,
        layout: xds.XdsLayout,
        settings: xds.ListenerSettings,
        envoy_binary: str = "envoy",
        settle_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`settle_s`: how long new clusters get to load before routes may use them."""
        self._layout = layout
        self._settings = settings
        self._envoy_binary = envoy_binary
        self._settle_s = settle_s
        self._clock = clock
        self._staged_at_s = -math.inf

    def apply(self, table: routing.RoutingTable) -> routing.Publication:
        resources = xds.render(table, self._layout, self._settings)
        validation.validate(resources, self._envoy_binary)
        cds_path, rds_path = Path(self._layout.cds_path), Path(self._layout.rds_path)
        live_cds = cds_path.read_text() if cds_path.exists() else None
        if rds_path.exists() and staging.added_clusters(live_cds, resources):
            write_if_changed(cds_path, staging.interim_cds_file(live_cds, resources))
            self._staged_at_s = self._clock()
            return routing.Publication.STAGED
        if self._clock() - self._staged_at_s < self._settle_s:
            return routing.Publication.STAGED
        self.write(resources)
        return routing.Publication.LIVE

    def write(self, resources: xds.XdsResources) -> None:
        """Write all files, CDS first, without validating or staging."""
        files = resources.files()
        targets = [
            (self._layout.cds_dir, xds.CDS_FILE),
            (self._layout.lds_dir, xds.LDS_FILE),
            (self._layout.rds_dir, xds.RDS_FILE),
        ]
        if self._layout.rtds_dir is not None:
            targets.insert(0, (self._layout.rtds_dir, xds.RTDS_FILE))
        for directory, name in targets:
            write_if_changed(Path(directory) / name, files[name])


def write_if_changed(path: Path, content: str) -> bool:
    """Atomically replace `path` with `content` unless it already holds it."""
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
