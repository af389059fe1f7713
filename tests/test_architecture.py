"""The decision core stays pure: no clock reads, no unseeded randomness, no `operator` package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_DIRS = [
    ROOT / "operator" / "tierscale" / "domain",
    ROOT / "operator" / "tierscale" / "policy",
    ROOT / "predictor" / "tierscale_predictor",
]
FORBIDDEN_CALLS = {
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("random", "random"),
    ("random", "seed"),
    ("np.random", "seed"),
}
FORBIDDEN_IMPORTS = {"time", "random", "subprocess", "socket", "requests", "aiohttp", "kopf"}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _violations(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name in FORBIDDEN_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "") in FORBIDDEN_IMPORTS:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = _dotted(node.func.value)
            if (owner, node.func.attr) in FORBIDDEN_CALLS or (
                owner.endswith("datetime") and node.func.attr in {"now", "utcnow"}
            ):
                found.append(f"call {owner}.{node.func.attr}()")
    return [f"{path.relative_to(root)}: {v}" for v in found]


def test_decision_core_never_reads_the_clock_or_global_randomness() -> None:
    files = [f for d in CORE_DIRS for f in sorted(d.rglob("*.py"))]
    assert files, "no core modules found: the layout changed"
    violations = [v for f in files for v in _violations(f)]
    assert violations == []


def test_the_detector_catches_clock_reads_and_forbidden_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\nfrom datetime import datetime\nx = time.time()\ny = datetime.now()\n"
    )
    assert _violations(bad, tmp_path) == [
        "bad.py: import time",
        "bad.py: call time.time()",
        "bad.py: call datetime.now()",
    ]


def test_no_package_is_importable_as_operator() -> None:
    for top in ("operator", "predictor", "e2e"):
        assert not (ROOT / top / "__init__.py").exists(), f"{top}/ must not be a package"
