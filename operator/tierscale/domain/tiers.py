"""A tier as the decision core sees it: parsed, validated, in SI units.

The Kubernetes-facing `SLOTier` resource (camelCase, duration strings) lives in
`tierscale.api`; its codec is the only code that turns a resource into a `Tier`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slo:
    """Latency targets one tier promises its requests."""

    ttft_s: float
    """Time to first token, queueing included, at `percentile`."""
    tpot_s: float
    """Time per output token (per-request mean after the first token), at `percentile`."""
    percentile: float = 99.0
    """0 < percentile < 100."""
    attainment_frac: float = 0.99
    """Fraction of requests that must meet both targets."""

    def at_least_as_tight_as(self, other: Slo) -> bool:
        """True when serving a request under `self` also meets `other`.

        Spillover is only ever allowed from a looser tier onto a pool whose SLO is at
        least as tight in every dimension, so borrowed capacity never breaks the borrower.
        """
        return (
            self.ttft_s <= other.ttft_s
            and self.tpot_s <= other.tpot_s
            and self.percentile >= other.percentile
        )


@dataclass(frozen=True, slots=True)
class Pool:
    """The vLLM Deployment a tier owns."""

    deployment: str
    min_replicas: int = 0
    max_replicas: int = 10
    gpus_per_replica: int = 1
    accelerator: str | None = None
    max_num_seqs: int | None = None
    """vLLM's --max-num-seqs on this Deployment, when it differs from the model profile's."""
    max_num_batched_tokens: int | None = None
    """vLLM's --max-num-batched-tokens on this Deployment (the chunked-prefill budget of a
    step), when it differs from the model profile's. Latency-critical tiers run smaller
    chunks: a decode step that shares the GPU with an 8192-token prefill chunk is several
    times longer than one that shares it with 2048 tokens."""
    max_model_len: int | None = None
    """vLLM's --max-model-len on this Deployment: no request's prompt (or output) is
    longer, so it closes the top bucket of the pool's token histograms. None: not set."""


@dataclass(frozen=True, slots=True)
class Scaling:
    """How fast the pool may change."""

    cold_start_s: float = 120.0
    """Time from 'replica requested' to 'replica serving' (scheduling + model load)."""
    scale_down_stabilization_s: float = 300.0
    """Scale down only after demand has stayed low this long (HPA's default window)."""
    max_scale_up_replicas: int = 4
    """At most this many replicas added in one decision."""
    max_scale_down_replicas: int = 1
    """At most this many replicas removed in one decision."""
    headroom: float = 1.0
    """Capacity held above the forecast demand, as a multiple of it (`spec.scaling.headroom`)."""


@dataclass(frozen=True, slots=True)
class Tier:
    """One SLO tier of one served model."""

    name: str
    namespace: str
    model: str
    slo: Slo
    pool: Pool
    priority: int = 0
    """Higher is served first when GPUs run short."""
    borrow: bool = True
    """This tier's requests may run on tighter tiers' pools."""
    lend: bool = True
    """This tier's pool may take looser tiers' requests."""
    scaling: Scaling = Scaling()
    routing_header: str = "x-slo-tier"
    routing_value: str = ""

    @property
    def key(self) -> str:
        """Unique key of the tier inside a cluster: `namespace/name`."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class GpuBudget:
    """GPUs the planner may use; None means unlimited."""

    total_gpus: int | None = None
    by_model: tuple[tuple[str, int], ...] = ()
    """(model, gpus) caps per served model, on top of the total."""

    def for_model(self, model: str) -> int | None:
        for name, gpus in self.by_model:
            if name == model:
                return gpus
        return None
