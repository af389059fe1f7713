"""The SLOTier CRD against a real kube-apiserver: what users will `kubectl apply` is accepted,
and what must be refused is refused with a message that says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tierscale_testbed.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
EXAMPLES = REPO / "examples" / "slotiers"
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))
INVALID = sorted(p for p in (EXAMPLES / "invalid").glob("*.yaml") if p.name != "expected.yaml")
CRD_NAME = "slotiers.tierscale.dev"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def slotier_crd(cluster: Cluster) -> str:
    """Installed once and left installed: later tests (and the operator) need it too."""
    cluster.kubectl("apply", "-f", str(CRD_DIR))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return CRD_NAME


def _docs_in(path: Path, namespace: str) -> list[dict[str, Any]]:
    """The example's documents moved into the test's namespace (some examples name their own,
    which `kubectl apply -n` would refuse)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        doc.setdefault("metadata", {})["namespace"] = namespace
    return docs


def _is_subset(expected: Any, actual: Any) -> bool:
    """Every field the user wrote survives the round trip (explicit nulls are pruned)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            v is None or (k in actual and _is_subset(v, actual[k])) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_is_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def test_examples_exist() -> None:
    assert VALID, f"no valid examples under {EXAMPLES / 'valid'}"
    assert INVALID, f"no invalid examples under {EXAMPLES / 'invalid'}"


def test_crd_is_established_and_served(cluster: Cluster, slotier_crd: str, namespace: str) -> None:
    crd = cluster.get_json("crd", slotier_crd)
    served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert served, "the CRD serves no version"
    listed = cluster.get_json("slotiers.tierscale.dev", "-n", namespace)
    assert listed["items"] == []


@pytest.mark.parametrize("example", VALID, ids=[p.name for p in VALID])
def test_valid_example_is_accepted(
    cluster: Cluster, slotier_crd: str, namespace: str, example: Path
) -> None:
    docs = _docs_in(example, namespace)
    cluster.apply(docs)
    for doc in docs:
        name = doc["metadata"]["name"]
        stored = cluster.get_json("slotiers.tierscale.dev", name, "-n", namespace)
        assert _is_subset(doc["spec"], stored["spec"]), (
            f"{example.name}: {name} changed on the way through the API server:\n"
            f"sent   {json.dumps(doc['spec'], sort_keys=True)}\n"
            f"stored {json.dumps(stored['spec'], sort_keys=True)}"
        )


def _expected_messages() -> dict[str, str]:
    expected = yaml.safe_load((EXAMPLES / "invalid" / "expected.yaml").read_text())
    return {name: entry["apiserver"] for name, entry in expected.items()}


@pytest.mark.parametrize("example", INVALID, ids=[p.name for p in INVALID])
def test_invalid_example_is_rejected_with_its_message(
    cluster: Cluster, slotier_crd: str, namespace: str, example: Path
) -> None:
    expected = _expected_messages()
    assert example.name in expected, f"{example.name} has no entry in expected.yaml"
    text = yaml.safe_dump_all(_docs_in(example, namespace), sort_keys=False)
    done = cluster.kubectl("apply", "-f", "-", check=False, input=text)
    assert done.returncode != 0, f"{example.name} was accepted:\n{done.stdout}"
    assert expected[example.name] in done.stderr, (
        f"{example.name}: expected {expected[example.name]!r} in:\n{done.stderr}"
    )
    assert cluster.get_json("slotiers.tierscale.dev", "-n", namespace)["items"] == []
