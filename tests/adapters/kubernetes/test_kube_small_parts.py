"""GPUs per accelerator, label selectors, ConfigMap names, Event bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierscale.adapters.kubernetes.configmap_state import configmap_name
from tierscale.adapters.kubernetes.gpus import allocatable_gpus
from tierscale.adapters.kubernetes.pools import label_selector
from tierscale.adapters.kubernetes.slotiers import event_body, micro_time
from tierscale.domain.reasons import Reason
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.loop.actions import TierEvent

DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def node(
    name: str, gpus: str | None, product: str | None, *, ready: str = "True", cordoned: bool = False
) -> dict[str, Any]:
    labels = {} if product is None else {"nvidia.com/gpu.product": product}
    allocatable = {"cpu": "96"} | ({} if gpus is None else {"nvidia.com/gpu": gpus})
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": ready}]},
    }


def test_allocatable_gpus_per_product_over_ready_schedulable_nodes() -> None:
    nodes = [
        node("h1", "8", "H100"),
        node("h2", "8", "H100"),
        node("h3", "8", "H100", ready="Unknown"),
        node("h4", "8", "H100", cordoned=True),
        node("l1", "4", "L4"),
        node("cpu", None, None),
        node("bare", "2", None),
        node("odd", "lots", "H100"),
    ]
    assert allocatable_gpus(nodes) == {"H100": 16, "L4": 4, "": 2}


def test_label_selector_string() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["gold", "silver"]},
            {"key": "canary", "operator": "NotIn", "values": ["true"]},
            {"key": "app", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert (
        label_selector(selector) == "a=1,b=2,tier in (gold,silver),canary notin (true),app,!legacy"
    )
    assert label_selector(None) == ""


@given(st.text(min_size=1, max_size=300))
def test_configmap_names_are_valid_for_any_model(model: str) -> None:
    name = configmap_name(model)
    assert len(name) <= 253 and DNS_1123_SUBDOMAIN.match(name), name
    assert configmap_name(model) == name


def test_configmap_names_are_readable_and_never_shared() -> None:
    assert configmap_name("meta-llama/Llama-3.1-8B-Instruct").startswith(
        "tierscale-state-meta-llama-llama-3-1-8b-instruct-"
    )
    similar = ["A/b", "a-b", "a_b", "a.b", "A-B", "a" * 80, "a" * 81]
    assert len({configmap_name(m) for m in similar}) == len(similar)
    assert configmap_name("///").startswith("tierscale-state-") and DNS_1123_SUBDOMAIN.match(
        configmap_name("///")
    )


TIER = Tier(name="gold", namespace="llm", model="m", slo=Slo(0.3, 0.03), pool=Pool("gold-vllm"))


def test_event_body() -> None:
    when = datetime(2025, 3, 1, 13, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))
    event = TierEvent("llm/gold", Reason.CONFLICT, "é" * 600, warning=True)
    body = event_body(TIER, event, uid="u-1", now=when, instance="tierscale-0")
    assert body["type"] == "Warning" and body["reason"] == "Conflict"
    assert body["eventTime"] == "2025-03-01T12:00:00.250000Z"
    assert body["regarding"] == {
        "apiVersion": "tierscale.dev/v1alpha1",
        "kind": "SLOTier",
        "name": "gold",
        "namespace": "llm",
        "uid": "u-1",
    }
    assert body["reportingController"] == "tierscale.dev/operator"
    assert len(body["note"].encode()) <= 1024 and body["note"].startswith("é")
    normal = event_body(
        TIER, TierEvent("llm/gold", Reason.STEADY, "ok", False), uid="", now=when, instance="x"
    )
    assert normal["type"] == "Normal" and "uid" not in normal["regarding"]


def test_event_times_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        micro_time(datetime(2025, 1, 1))
    assert micro_time(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00.000000Z"
