"""The pinned versions are one fact, stated once: the build script, the Go modules and
Python must agree, or a cached binary could be picked up under the wrong version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tierscale_testbed import binaries
from tierscale_testbed.versions import VERSIONS

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "testbed" / "build-binaries.sh"
TOOL_SPEC = re.compile(
    r"\b([a-z][a-z-]*)=((?:k8s\.io|go\.etcd\.io|sigs\.k8s\.io|helm\.sh)/[^\s\\]+)"
)


def test_build_script_builds_exactly_the_tools_python_expects() -> None:
    built = {tool for tool, _ in TOOL_SPEC.findall(BUILD_SCRIPT.read_text())}
    assert built == set(binaries.TOOL_VERSIONS)


@pytest.mark.parametrize(
    ("module_dir", "module", "version"),
    [
        ("kubernetes", "k8s.io/kubernetes", VERSIONS.kubernetes),
        ("etcd", "go.etcd.io/etcd/server/v3", VERSIONS.etcd),
        ("kwok", "sigs.k8s.io/kwok", VERSIONS.kwok),
        ("helm", "helm.sh/helm/v4", VERSIONS.helm),
    ],
)
def test_go_module_pins_the_same_version(module_dir: str, module: str, version: str) -> None:
    go_mod = (REPO / "e2e" / "go" / module_dir / "go.mod").read_text()
    assert re.search(rf"^\s*{re.escape(module)} {re.escape(version)}\b", go_mod, re.M), (
        f"e2e/go/{module_dir}/go.mod does not require {module} {version}"
    )


def test_missing_binary_fails_with_the_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERSCALE_CACHE", str(tmp_path))
    with pytest.raises(binaries.BinariesMissingError, match="make testbed-binaries"):
        binaries.require_binaries()
