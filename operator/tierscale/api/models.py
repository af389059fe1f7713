"""The SLOTier resource as pydantic models: the single source of truth of the API.

The CRD in crds/ (`tierscale.api.crd`), the parser (`tierscale.api.codec`) and the field
reference in docs/ are all derived from these classes, so a constraint written here is
enforced identically by the Kubernetes API server and by `tierscale plan --tiers FILE`.
Every constraint must therefore be expressible in OpenAPI v3 or as a CEL rule attached
with `x-kubernetes-validations`; Python-only checks would make the two verdicts diverge.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from tierscale.api.durations import DURATION_MAX_LENGTH, DURATION_PATTERN, parse_duration

GROUP: Final = "tierscale.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "SLOTier"
PLURAL: Final = "slotiers"
SINGULAR: Final = "slotier"
SHORT_NAMES: Final = ("slot",)
CATEGORIES: Final = ("tierscale",)

DEFAULT_ROUTING_HEADER: Final = "x-slo-tier"
MIN_MAX_MESSAGE: Final = "minReplicas must be <= maxReplicas"
POSITIVE_DURATION_MESSAGE: Final = "must be a duration greater than 0"
DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HEADER_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]*$"
HEADER_VALUE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def _require_positive_duration(text: str) -> str:
    if parse_duration(text) <= 0.0:
        raise ValueError(POSITIVE_DURATION_MESSAGE)
    return text


def _integral_float_to_int(value: object) -> object:
    """kubectl sends YAML `3.0` as JSON `3`, which the API server accepts as an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_INTEGRAL = BeforeValidator(_integral_float_to_int)
"""Attach to every integer field: it is what the API server sees after kubectl's conversion."""

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=DURATION_MAX_LENGTH)]
"""A number and a unit (ms, s or m), e.g. 300ms, 5s, 1.5m; see `parse_duration`."""
PositiveDuration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=DURATION_MAX_LENGTH,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "duration(self) > duration('0s')", "message": POSITIVE_DURATION_MESSAGE}
            ]
        },
    ),
    AfterValidator(_require_positive_duration),
]


class SpecModel(BaseModel):
    """Strict, closed objects: types are never coerced and unknown fields are rejected.

    This is what the API server does under kubectl's default `--validate=strict`, and it
    turns a typo like `maxReplica` into an error instead of a silently ignored field.
    """

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        alias_generator=to_camel,
        use_attribute_docstrings=True,
    )


class SloSpec(SpecModel):
    """Latency targets this tier promises its requests."""

    ttft: PositiveDuration
    """Time-to-first-token target, queueing included, at `percentile`. Duration, e.g. 300ms."""
    tpot: PositiveDuration
    """Time-per-output-token target at `percentile`. Duration, e.g. 30ms."""
    percentile: Annotated[float, Field(gt=0.0, lt=100.0)] = 99.0
    """Percentile the TTFT and TPOT targets are stated and reported at (0 < p < 100). Pools
    are sized to `attainment`: each latency at p = 100 - 50 x (1 - attainment)."""
    attainment: Annotated[float, Field(gt=0.0, le=1.0)] = 0.99
    """Fraction of requests that must meet both targets (0 < a <= 1)."""


class PoolSpec(SpecModel):
    """The vLLM Deployment this tier owns and its size limits."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": MIN_MAX_MESSAGE}
            ]
        }
    )

    deployment: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
    """Name of the vLLM Deployment (same namespace) whose replicas tierscale sets."""
    min_replicas: Annotated[int, Field(ge=0, le=1000), _INTEGRAL] = 0
    """Never scale below this many replicas (0 allows scale to zero)."""
    max_replicas: Annotated[int, Field(ge=1, le=1000), _INTEGRAL]
    """Never scale above this many replicas."""
    gpus_per_replica: Annotated[int, Field(ge=1, le=64), _INTEGRAL] = 1
    """GPUs one replica uses (its tensor-parallel size); counted against the GPU budget."""
    accelerator: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """Accelerator label of the pool's nodes (e.g. nvidia-h100-80gb), for the model profile."""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> PoolSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(MIN_MAX_MESSAGE)
        return self


class RoutingSpec(SpecModel):
    """The request header Envoy matches to send a request to this tier."""

    header: Annotated[str, Field(min_length=1, max_length=128, pattern=HEADER_NAME_PATTERN)] = (
        DEFAULT_ROUTING_HEADER
    )
    """Lower-case HTTP header name that carries the tier."""
    value: (
        Annotated[str, Field(min_length=1, max_length=253, pattern=HEADER_VALUE_PATTERN)] | None
    ) = None
    """Header value that selects this tier; defaults to the SLOTier's metadata.name."""


class SpilloverSpec(SpecModel):
    """Whether this tier takes part in spillover between pools of the same model."""

    borrow: bool = True
    """This tier's requests may run on tighter tiers' pools when they have spare capacity."""
    lend: bool = True
    """This tier's pool may take looser tiers' requests when it has spare capacity."""


class ScalingSpec(SpecModel):
    """How fast the pool may change."""

    cold_start: Duration = "120s"
    """Expected time from 'replica requested' to 'replica serving' (scheduling + model
    load); demand is forecast this far ahead. Duration, e.g. 90s or 2m."""
    scale_down_stabilization: Duration = "300s"
    """Scale down only after demand has stayed lower for this long. Duration, e.g. 5m."""
    max_scale_up_replicas: Annotated[int, Field(ge=1, le=1000), _INTEGRAL] = 4
    """At most this many replicas added in one decision."""
    max_scale_down_replicas: Annotated[int, Field(ge=1, le=1000), _INTEGRAL] = 1
    """At most this many replicas removed in one decision."""
    headroom: Annotated[float, Field(ge=1.0, le=4.0)] = 1.0
    """Capacity held above the forecast demand, as a multiple of it (1.0: none; 1.5: half
    again). A surge the forecast has not seen is served only by replicas already Ready
    while new ones start; under a binding GPU budget headroom yields to every tier's
    present demand (1.0..4.0)."""


def _default_object() -> dict[str, object]:
    """`default: {}` in the CRD, so the API server fills in the object's own defaults."""
    return {"default": {}}


class SLOTierSpec(SpecModel):
    """Desired state of one SLO tier of one served model."""

    model: Annotated[str, Field(min_length=1, max_length=256)]
    """Served model name, as in vLLM's `model_name` metric label."""
    slo: SloSpec
    """Latency targets."""
    priority: Annotated[int, Field(ge=-1000, le=1000), _INTEGRAL] = 0
    """Higher is served first when GPUs run short (-1000..1000)."""
    pool: PoolSpec
    """The Deployment this tier owns."""
    routing: Annotated[RoutingSpec, Field(json_schema_extra=_default_object())] = RoutingSpec()
    """How requests are marked for this tier."""
    spillover: Annotated[SpilloverSpec, Field(json_schema_extra=_default_object())] = (
        SpilloverSpec()
    )
    """Spillover participation."""
    scaling: Annotated[ScalingSpec, Field(json_schema_extra=_default_object())] = ScalingSpec()
    """Rate limits and timings of scaling."""


# ----------------------------------------------------------------------------- status


class StatusModel(BaseModel):
    """Status objects are written by tierscale itself, so they are lax on input."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class ConditionType(StrEnum):
    READY = "Ready"
    SLO_MET = "SLOMet"
    BUDGET_LIMITED = "BudgetLimited"
    MODEL_CALIBRATED = "ModelCalibrated"
    ENGINE_ARGS_FIT = "EngineArgsFit"
    INVALID_SPEC = "InvalidSpec"
    CONFLICT = "Conflict"
    HOLD = "Hold"


class Condition(StatusModel):
    """A standard Kubernetes condition (the shape of metav1.Condition)."""

    type: ConditionType
    """Ready, SLOMet, BudgetLimited, ModelCalibrated, EngineArgsFit, InvalidSpec, Conflict or
    Hold."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)]
    """CamelCase reason code."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable detail."""
    last_transition_time: datetime
    """When `status` last changed."""
    observed_generation: Annotated[int, Field(ge=0), _INTEGRAL] | None = None
    """metadata.generation the condition was computed from."""


class DemandStatus(StatusModel):
    rate_rps: float | None = None
    """Observed request rate of this tier (requests/s)."""
    prompt_tokens_mean: float | None = None
    """Mean prompt length (tokens)."""
    output_tokens_mean: float | None = None
    """Mean output length (tokens)."""


class ReplicasStatus(StatusModel):
    desired: int | None = None
    """Replicas the planner wants for this tier's pool."""
    ready: int | None = None
    """Replicas of the pool that are Ready."""


class LatencyStatus(StatusModel):
    predicted_ttft_seconds: float | None = None
    """Predicted TTFT at the SLO percentile (seconds)."""
    predicted_tpot_seconds: float | None = None
    """Predicted TPOT at the SLO percentile (seconds)."""
    observed_ttft_seconds: float | None = None
    """Observed TTFT at the SLO percentile (seconds)."""
    observed_tpot_seconds: float | None = None
    """Observed TPOT at the SLO percentile (seconds)."""


class SpilloverStatus(StatusModel):
    in_rps: float | None = None
    """Looser tiers' traffic routed onto this pool now (requests/s)."""
    out_rps: float | None = None
    """This tier's traffic routed onto tighter pools now (requests/s)."""


class ErrorBudgetStatus(StatusModel):
    remaining_frac: float | None = None
    """Share of the attainment window's error budget left: 1 - misses / (requests x (1 -
    attainment target)). 1: no request missed; 0: spent; negative: overspent."""
    window_seconds: float | None = None
    """Length of the attainment window (the metrics window, seconds)."""
    window_requests: float | None = None
    """Requests that finished in the window (what the estimate rests on)."""


class DecisionStatus(StatusModel):
    reason: str
    """Reason code of the last decision (e.g. ForecastUp)."""
    message: str = ""
    """One sentence: what changed and why, with the numbers."""
    time: datetime
    """When the decision was taken."""


class SLOTierStatus(StatusModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    """metadata.generation of the spec this status describes."""
    demand: DemandStatus | None = None
    """Observed demand."""
    replicas: ReplicasStatus | None = None
    """Desired and ready replicas."""
    latency: LatencyStatus | None = None
    """Predicted and observed latency at the SLO percentile."""
    attainment: float | None = None
    """Observed fraction of requests meeting the SLO."""
    spillover: SpilloverStatus | None = None
    """Spillover in and out, as routed now."""
    error_budget: ErrorBudgetStatus | None = None
    """Error budget left in the attainment window."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready, SLOMet, BudgetLimited, ModelCalibrated, InvalidSpec, Conflict, Hold."""
    last_decision: DecisionStatus | None = None
    """The last scaling decision."""
