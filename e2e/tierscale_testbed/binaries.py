"""Where the testbed's pinned binaries live, and a loud failure when they do not.

Binaries are built by ``make testbed-binaries`` into a cache outside the repository, keyed
by version (``<cache>/bin/<tool>-<version>``), so that a fresh checkout, several engineers on
one machine and CI all share one cold build. Tests never build anything themselves: a build
takes many minutes and would hide inside a fixture's timeout.
"""

from __future__ import annotations

import os
from pathlib import Path

from tierscale_testbed.versions import VERSIONS

BUILD_HINT = "run `make testbed-binaries` (scripts/testbed/build-binaries.sh) first"

# Tool name -> pinned version. Keep in step with the table in scripts/testbed/build-binaries.sh
# (e2e/tests/test_cluster_binaries.py checks that they agree).
TOOL_VERSIONS: dict[str, str] = {
    "kube-apiserver": VERSIONS.kubernetes,
    "kube-controller-manager": VERSIONS.kubernetes,
    "kube-scheduler": VERSIONS.kubernetes,
    "kubectl": VERSIONS.kubernetes,
    "etcd": VERSIONS.etcd,
    "kwok": VERSIONS.kwok,
    "kwokctl": VERSIONS.kwok,
    "helm": VERSIONS.helm,
}


class BinariesMissingError(RuntimeError):
    """Raised instead of skipping: a silently skipped e2e suite looks exactly like a green one."""


def cache_dir() -> Path:
    """The shared cache root; ``TIERSCALE_CACHE`` moves it (e.g. onto a CI cache volume)."""
    override = os.environ.get("TIERSCALE_CACHE")
    return (Path(override) if override else Path.home() / ".cache" / "tierscale").absolute()


def bin_dir() -> Path:
    return cache_dir() / "bin"


def binary_path(tool: str) -> Path:
    return bin_dir() / f"{tool}-{TOOL_VERSIONS[tool]}"


def missing_binaries() -> list[Path]:
    return [p for p in (binary_path(t) for t in TOOL_VERSIONS) if not os.access(p, os.X_OK)]


def require_binaries() -> dict[str, Path]:
    """Every tool's path, or an error that names what is missing and how to build it."""
    missing = missing_binaries()
    if missing:
        listing = ", ".join(str(p) for p in missing)
        raise BinariesMissingError(f"testbed binaries missing: {listing}; {BUILD_HINT}")
    return {tool: binary_path(tool) for tool in TOOL_VERSIONS}
