"""Pinned versions of the testbed's Go-built tools, parsed from ``versions.env``.

The versions live in a shell-readable file so that ``scripts/testbed/build-binaries.sh`` and
Python agree on one source of truth: a binary cached under one version can never be picked up
by code expecting another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.env")


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    etcd: str
    kwok: str
    helm: str


def parse_env_file(text: str) -> dict[str, str]:
    """Read ``KEY=value`` lines; the file is also ``source``d by bash, so keep it that simple."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{VERSIONS_FILE}: not KEY=value: {raw!r}")
        values[key.strip()] = value.strip()
    return values


def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    values = parse_env_file(path.read_text())
    return Versions(
        kubernetes=values["KUBERNETES_VERSION"],
        etcd=values["ETCD_VERSION"],
        kwok=values["KWOK_VERSION"],
        helm=values["HELM_VERSION"],
    )


VERSIONS = load_versions()
