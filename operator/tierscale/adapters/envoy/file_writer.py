"""Publish a routing table as files in Envoy's watched directories.

Envoy reloads a file subscription when a file is *moved* into its watched directory, so
each file is written to a temp name beside it and renamed over the old one: Envoy never
reads half a file. Unchanged files are not rewritten, so a weight change touches RDS only
and never drains the listener or re-warms clusters. CDS goes first: a route may only name
clusters Envoy already knows (`validate_clusters`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tierscale.adapters.envoy import routing, validation, xds


class FileRoutingWriter:
    """`RoutingWriter` for an Envoy that reads LDS/CDS/RDS from local directories."""

    def __init__(
        self,
        layout: xds.XdsLayout,
        settings: xds.ListenerSettings,
        envoy_binary: str = "envoy",
    ) -> None:
        self._layout = layout
        self._settings = settings
        self._envoy_binary = envoy_binary

    def apply(self, table: routing.RoutingTable) -> None:
        resources = xds.render(table, self._layout, self._settings)
        validation.validate(resources, self._envoy_binary)
        self.write(resources)

    def write(self, resources: xds.XdsResources) -> None:
        """Write without validating: only for resources `validation.validate` accepted."""
        files = resources.files()
        for directory, name in (
            (self._layout.cds_dir, xds.CDS_FILE),
            (self._layout.lds_dir, xds.LDS_FILE),
            (self._layout.rds_dir, xds.RDS_FILE),
        ):
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
