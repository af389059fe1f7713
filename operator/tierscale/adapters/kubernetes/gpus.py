"""GPUs the cluster can give pods, per accelerator: the `auto` GPU budget.

Counted over nodes that can take new pods now (Ready and not cordoned), from
`status.allocatable` (what the scheduler places against, after system reservations),
keyed by the `nvidia.com/gpu.product` label; GPU nodes without the label count under "".
GPUs already used by other workloads are not subtracted: the budget is the fleet tierscale
plans within, and the scheduler leaves pods beyond what is free Pending, which the
planner sees as replicas not Ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tierscale.adapters.kubernetes.names import GPU_PRODUCT_LABEL, GPU_RESOURCE


def allocatable_gpus(nodes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """accelerator label -> allocatable `nvidia.com/gpu` over Ready, schedulable nodes."""
    out: dict[str, int] = {}
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable") or not _ready(node):
            continue
        gpus = _count((node.get("status") or {}).get("allocatable", {}).get(GPU_RESOURCE))
        if gpus <= 0:
            continue
        label = str(((node.get("metadata") or {}).get("labels") or {}).get(GPU_PRODUCT_LABEL, ""))
        out[label] = out.get(label, 0) + gpus
    return out


def _ready(node: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _count(value: object) -> int:
    """An extended resource is a whole number (`"8"`); anything else counts as none."""
    try:
        return int(str(value))
    except ValueError:
        return 0
