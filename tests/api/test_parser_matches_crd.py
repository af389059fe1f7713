"""The parser and the CRD schema give the same verdict on any spec (property test).

The CRD side is `crd_schema_eval.admit`, a model of the API server's admission of a
custom resource (null pruning, defaulting, OpenAPI validation, strict unknown fields,
CEL rules). Specs are random mutations of a valid one, biased towards boundary values.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.crd_schema_eval import admit
from tierscale.api.codec import SpecError, to_tier
from tierscale.api.crd import openapi_schema

BASE: dict[str, Any] = {
    "apiVersion": "tierscale.dev/v1alpha1",
    "kind": "SLOTier",
    "metadata": {"name": "tier", "namespace": "ns"},
    "spec": {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "slo": {"ttft": "300ms", "tpot": "30ms", "percentile": 99, "attainment": 0.99},
        "priority": 10,
        "pool": {"deployment": "pool", "minReplicas": 1, "maxReplicas": 4, "gpusPerReplica": 1},
        "routing": {"header": "x-slo-tier", "value": "tier"},
        "spillover": {"borrow": True, "lend": True},
        "scaling": {
            "coldStart": "120s",
            "scaleDownStabilization": "300s",
            "maxScaleUpReplicas": 4,
            "maxScaleDownReplicas": 1,
        },
    },
}
PATHS = [
    "model",
    "slo",
    "slo.ttft",
    "slo.tpot",
    "slo.percentile",
    "slo.attainment",
    "priority",
    "pool",
    "pool.deployment",
    "pool.minReplicas",
    "pool.maxReplicas",
    "pool.gpusPerReplica",
    "pool.accelerator",
    "pool.replicas",
    "routing",
    "routing.header",
    "routing.value",
    "spillover",
    "spillover.borrow",
    "spillover.lend",
    "scaling",
    "scaling.coldStart",
    "scaling.scaleDownStabilization",
    "scaling.maxScaleUpReplicas",
    "scaling.maxScaleDownReplicas",
    "scaling.headroom",
    "unknown",
]
DELETE = object()
STRINGS = [
    "300ms",
    "0ms",
    "0s",
    "0.000s",
    "0.001ms",
    "1.5m",
    "12345678m",
    "123456789s",
    "1.2345s",
    "5 s",
    "5s\n",
    "5",
    "abc",
    "",
    "x-slo-tier",
    "X-Slo-Tier",
    "llama-8b",
    "Llama",
    "a" * 63,
    "a" * 64,
    "research.premium",
    "-bad",
    "bad-",
    "a_b",
    "nvidia-h100-80gb",
]
NUMBERS = [-1001, -1000, -1, 0, 1, 2, 4, 63, 64, 65, 99, 100, 999, 1000, 1001]
FLOATS = [0.0, 1e-9, 0.5, 0.99, 1.0, 1.5, 2.0, 4.0, 99.0, 99.999, 100.0, 100.5, -0.5, 1e20]
VALUES = st.one_of(
    st.sampled_from([DELETE, None, True, False, {}, [1]]),
    st.sampled_from(STRINGS),
    st.sampled_from(NUMBERS),
    st.integers(),
    st.sampled_from(FLOATS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dictionaries(st.sampled_from(["ttft", "value", "x"]), st.sampled_from(STRINGS), max_size=2),
)


def _mutate(body: dict[str, Any], path: str, value: object) -> None:
    *parents, leaf = path.split(".")
    node: Any = body["spec"]
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = copy.deepcopy(value)


def _parser_accepts(body: dict[str, Any]) -> bool:
    try:
        to_tier(body)
    except SpecError:
        return False
    return True


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_parser_and_crd_schema_agree(mutations: list[tuple[str, object]]) -> None:
    body = copy.deepcopy(BASE)
    for path, value in mutations:
        _mutate(body, path, value)
    crd_errors = admit(SCHEMA, body)
    assert _parser_accepts(body) == (not crd_errors), (body, crd_errors)


def test_the_unmutated_base_is_valid() -> None:
    assert _parser_accepts(BASE) and admit(SCHEMA, BASE) == []


SCHEMA = openapi_schema()
