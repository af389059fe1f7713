"""The ports of the control loop: what a shell must provide for observe -> decide -> act.

Each port is a Protocol with a real adapter (`tierscale.adapters.<system>`) and an
in-memory fake beside it (`tierscale.adapters.<system>.fake`). The tick (`loop.tick`)
sees only these; it never asks which one it has.

Errors: a port raises `PortError` (or a subclass) for anything it cannot do; the tick
turns it into Hold for what depended on it and counts it in `adapter_errors_total`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from tierscale.domain.metrics import MetricInputs, PoolReplicas
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import Tier
from tierscale.loop.actions import RoutingIntent, TierEvent


class PortError(RuntimeError):
    """An adapter could not read or write what it was asked to (message says what and why)."""


# ----------------------------------------------------------------------------- metrics


class MetricsPort(Protocol):
    """What Prometheus knows (Envoy's per-route counters, vLLM's pod metrics)."""

    def read(self, tiers: Sequence[Tier], now_s: float) -> MetricInputs:
        """Traffic per tier and signals per pool at `now_s`; `replicas_by_pool` left empty
        (Kubernetes fills it). A failed query, an empty or NaN result or a sample older
        than the staleness limit is None for that field, never 0."""
        ...

    def inflight_by_pod(self, pool_key: str, now_s: float) -> Mapping[str, float]:
        """pod name -> requests running + waiting on it now (for choosing pods to remove)."""
        ...


# ----------------------------------------------------------------------------- cluster


@dataclass(frozen=True, slots=True)
class EngineArgs:
    """A pool's vLLM engine arguments, read from its Deployment's container (not the CRD)."""

    max_num_seqs: int | None = None
    """`--max-num-seqs`; None: vLLM's default (the model profile's)."""
    max_num_batched_tokens: int | None = None
    """`--max-num-batched-tokens`; None: vLLM's default."""
    max_model_len: int | None = None
    """`--max-model-len` (tokens of prompt and output together); None: not set (the
    model's context length, which tierscale does not know)."""
    gpus_per_replica: int | None = None
    """The container's `nvidia.com/gpu` limit (the tensor-parallel size); None: not set."""
    accelerator: str | None = None
    """The pod template's node selector on `nvidia.com/gpu.product`, if any."""


@dataclass(frozen=True, slots=True)
class OtherWriter:
    """Something besides tierscale that sets a Deployment's replicas."""

    kind: str
    """HorizontalPodAutoscaler, ScaledObject or FieldManager."""
    name: str
    """Its name (the HPA's, the ScaledObject's, or the field manager that wrote replicas)."""
    detail: str = ""
    """What it did and how to hand the replicas back to tierscale, for status and Events."""

    def describe(self) -> str:
        text = f"{self.kind} {self.name}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True, slots=True)
class PoolView:
    """One tier's Deployment as the cluster shows it."""

    pool_key: str
    exists: bool
    replicas: PoolReplicas
    engine: EngineArgs
    other_writer: OtherWriter | None = None
    """Set while another writer owns `spec.replicas` (tierscale then does not write it)."""
    resource_version: str | None = None


class ScaleOutcome(StrEnum):
    UNCHANGED = "Unchanged"
    """Already at the requested replicas: nothing was written."""
    SCALED = "Scaled"
    CONFLICT = "Conflict"
    """409: the Deployment changed since it was read; re-read next tick, never retried blindly."""
    REFUSED = "Refused"
    """Another writer owns replicas (see `PoolView.other_writer`): nothing was written."""


class ClusterPort(Protocol):
    """What Kubernetes knows and does: Deployments, nodes' GPUs, SLOTier status, Events."""

    def pools(self, tiers: Sequence[Tier]) -> Mapping[str, PoolView]:
        """pool key -> view, for every tier's Deployment (missing ones with exists=False)."""
        ...

    def allocatable_gpus(self) -> Mapping[str, int]:
        """accelerator label (`nvidia.com/gpu.product`) -> allocatable GPUs on Ready nodes."""
        ...

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        """Set replicas through `/scale` with the resourceVersion in `pool`; before a
        scale-down, mark the pods to go (least in-flight work first) with
        `controller.kubernetes.io/pod-deletion-cost`."""
        ...

    def write_status(self, tier: Tier, status: Mapping[str, Any]) -> None:
        """Patch the SLOTier's status subresource (whole `status`)."""
        ...

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        """(metadata.generation, status.conditions) of the SLOTier as last read."""
        ...

    def emit_event(self, tier: Tier, event: TierEvent) -> None: ...


# ----------------------------------------------------------------------------- router


class RouteOutcome(StrEnum):
    UNCHANGED = "Unchanged"
    PUBLISHED = "Published"
    STAGED = "Staged"
    """New clusters published first; the routes follow on a later tick."""
    REJECTED = "Rejected"
    """Validation refused the config: the live routing is unchanged (the tick reports it
    when `apply` raises `RoutesRejected`)."""


class RoutesRejected(PortError):
    """`RouterPort.apply`: validation refused the config; nothing was written and the live
    routing keeps serving. The message is the validator's own reason."""


class RouterPort(Protocol):
    """Envoy: per-tier weighted routes over pools, admission caps per pool."""

    def apply(self, routing: RoutingIntent, tiers: Sequence[Tier]) -> RouteOutcome:
        """Publish the routes of `tiers` (one model group), keeping other groups' routes;
        raise `RoutesRejected` when the config is refused, PortError when it cannot tell."""
        ...


# ----------------------------------------------------------------------------- state


class StateUnreadable(PortError):
    """Stored state exists but cannot be read (another schema version, corrupt content).

    The caller starts the model from no state (and says so); the next `save` replaces it,
    keeping the unreadable text beside it. Any other PortError from `load` is transient:
    try again next tick rather than forget the windows."""


class StatePort(Protocol):
    """Where a model's planner state survives a restart."""

    def load(self, model: str) -> PlannerState | None:
        """The saved state, or None if none was saved; raises StateUnreadable (start from
        no state) or PortError (could not read now)."""
        ...

    def save(self, model: str, state: PlannerState) -> None: ...
