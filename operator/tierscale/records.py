"""The one serialiser: versioned JSON for planner state and decision records.

Every persisted or replayed object is a frozen dataclass of the decision core; one
pydantic `TypeAdapter` per type turns it into JSON and back, checked against the type
(a missing required field or a wrong type is an error naming the field), so no
hand-written to/from-dict code can drift from the dataclasses. A field this version does
not know is ignored and a field added with a default reads as that default, so an
operator rolled back or upgraded keeps the state the other version saved
(`tests/test_records.py`). Keys are the Python field
names (snake_case, units in names). Every document carries `schema_version`; a reader
refuses another version rather than guess.

- `PlannerState` is what the operator persists per model (a ConfigMap) so a restart
  resumes its stabilisation windows, learned bias and smoothed lengths;
- a `DecisionRecord` holds everything one `planner.plan` call read and returned;
  `tierscale replay RECORD.json` recomputes the plan and compares.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter, ValidationError

import tierscale
from tierscale.domain.metrics import MetricInputs
from tierscale.domain.observations import Observations
from tierscale.domain.plans import Plan, PlannerState
from tierscale.domain.tiers import GpuBudget, Tier
from tierscale.policy import planner
from tierscale_predictor import latency

SCHEMA_VERSION: Final = 1
"""Bump when a field changes meaning or a required field is added."""


class RecordError(ValueError):
    """A document is not a valid record of the expected kind and version."""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision, complete: replaying its inputs through `planner.plan` gives `plan`."""

    record_id: str
    """`<model group>@<now_s>`: what log lines and Events cite."""
    model_group: str
    """The served model whose tiers were planned jointly."""
    now_s: float
    tiers: tuple[Tier, ...]
    observations: Observations
    models: Mapping[str, latency.LatencyModel]
    """served model name -> latency model the plan used (before online corrections)."""
    config: planner.PlannerConfig
    budget: GpuBudget | None
    conflicts: Mapping[str, str]
    """tier key -> the other writer the tier's Deployment was held for."""
    invalid: Mapping[str, str]
    """tier key -> why the shell did not plan it (e.g. its Deployment does not exist)."""
    state_in: PlannerState | None
    plan: Plan
    """The decision, with the state it hands to the next one (`plan.state`)."""
    inputs: MetricInputs | None = None
    """The raw metric inputs the observations came from, when the shell kept them."""
    tierscale_version: str = field(default=tierscale.__version__)
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """The inputs of one decision besides tiers and model: what `tierscale plan` reads."""

    now_s: float
    observations: Observations
    budget: GpuBudget | None = None
    state: PlannerState | None = None
    """The planner state of the previous decision (its windows, bias, smoothed lengths)."""
    conflicts: Mapping[str, str] = field(default_factory=dict)
    invalid: Mapping[str, str] = field(default_factory=dict)


T = TypeVar("T")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    """One TypeAdapter per type, built on first use (building one walks the whole type)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def to_jsonable(value: object) -> Any:
    """A dataclass of the core as plain JSON data (dicts, lists, numbers, strings)."""
    return _adapter(type(value)).dump_python(value, mode="json")


def from_jsonable(kind: type[T], data: Any) -> T:
    """Parse plain JSON data into `kind`, or raise RecordError naming the bad field."""
    try:
        parsed: T = _adapter(kind).validate_python(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise RecordError(f"not a valid {kind.__name__}: {problems}") from err
    return parsed


def dumps(value: object) -> str:
    """JSON text of a core dataclass inside a versioned envelope."""
    envelope = {
        "kind": type(value).__name__,
        "schema_version": SCHEMA_VERSION,
        "data": to_jsonable(value),
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), allow_nan=False)


def loads(kind: type[T], text: str) -> T:
    """Parse what `dumps` wrote; refuse another kind or schema version."""
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from err
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise RecordError("not a tierscale record (no envelope with `data`)")
    if envelope.get("kind") != kind.__name__:
        raise RecordError(f"expected a {kind.__name__} record, got {envelope.get('kind')!r}")
    version = envelope.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"record schema version {version!r}; this tierscale ({tierscale.__version__}) "
            f"reads version {SCHEMA_VERSION} only"
        )
    return from_jsonable(kind, envelope["data"])


def replay(record: DecisionRecord) -> Plan:
    """Recompute the recorded decision from its inputs (the same call the loop made)."""
    return planner.plan(
        tiers=record.tiers,
        observations=record.observations,
        model=dict(record.models),
        now_s=record.now_s,
        state=record.state_in,
        budget=record.budget,
        config=record.config,
        conflicts=record.conflicts,
        invalid=record.invalid,
    )


def same_plan(a: Plan, b: Plan) -> bool:
    """Equal as recorded (JSON form): what `tierscale replay` checks."""
    return bool(to_jsonable(a) == to_jsonable(b))


def differences(a: Plan, b: Plan) -> list[str]:
    """Field paths where two plans differ (for `tierscale replay` to print)."""
    out: list[str] = []
    _diff(to_jsonable(a), to_jsonable(b), "plan", out)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            _diff(a.get(key), b.get(key), f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: recorded {b!r}, replayed {a!r}")
