"""SLOTier resource <-> domain `Tier`: the only code that reads an SLOTier's spec.

Used where no API server stands guard (`tierscale plan --tiers FILE.yaml`) and by the
operator, which reports a bad spec as an InvalidSpec condition instead of crashing. Its
verdicts match the CRD's: it mirrors the API server's null pruning, kubectl's YAML-to-JSON
number conversion and strict unknown-field checking, and messages use the API server's
phrasing ("Required value", "Invalid value: ...: should match '...'").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tierscale.api.durations import DURATION_PATTERN, format_duration, parse_duration
from tierscale.api.models import API_VERSION, KIND, SLOTierSpec
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier

DEFAULT_NAMESPACE: Final = "default"
DNS_SUBDOMAIN_MAX_LENGTH: Final = 253
_DNS_SUBDOMAIN_RE: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_TOP_LEVEL_KEYS: Final = ("apiVersion", "kind", "metadata", "spec", "status")
_TYPE_NAMES: Final = {
    "int_type": "integer",
    "float_type": "number",
    "finite_number": "number",
    "string_type": "string",
    "bool_type": "boolean",
    "model_type": "object",
    "dict_type": "object",
    "model_attributes_type": "object",
}
_BOUND_PHRASES: Final = {
    "greater_than_equal": ("ge", "should be greater than or equal to"),
    "greater_than": ("gt", "should be greater than"),
    "less_than_equal": ("le", "should be less than or equal to"),
    "less_than": ("lt", "should be less than"),
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field."""

    path: str
    """Dotted field path, e.g. `spec.pool.minReplicas` ("" for the whole document)."""
    message: str
    """What is wrong and what was expected, in the API server's phrasing."""
    line: int | None = None
    """1-based line in the source file, when parsed from a file."""
    document: int | None = None
    """1-based index of the YAML document in a multi-document file."""

    def __str__(self) -> str:
        where = ", ".join(
            f"{label} {number}"
            for label, number in (("document", self.document), ("line", self.line))
            if number is not None
        )
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.path}: {self.message}" if self.path else f"{prefix}{self.message}"


class SpecError(ValueError):
    """An SLOTier (or a file of them) is invalid; `.errors` says where and why."""

    def __init__(self, errors: Sequence[FieldError], source: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.source}: " if self.source else ""
        noun = "error" if len(self.errors) == 1 else "errors"
        lines = [f"{head}invalid SLOTier ({len(self.errors)} {noun})"]
        lines += [f"  {error}" for error in self.errors]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- parsing


def parse_spec(spec: object) -> SLOTierSpec:
    """Validate a resource's `spec` (camelCase mapping) into the API model."""
    if not isinstance(spec, Mapping):
        raise SpecError(
            [FieldError("spec", f"Invalid value: {_show(spec)}: must be of type object")]
        )
    try:
        return SLOTierSpec.model_validate(_drop_nulls(spec, SLOTierSpec))
    except ValidationError as err:
        raise SpecError([_field_error(detail, prefix="spec") for detail in err.errors()]) from None


def to_tier(body: Mapping[str, object]) -> Tier:
    """Parse an SLOTier resource (a kopf body or a YAML document) into a domain `Tier`."""
    errors = list(_check_envelope(body))
    if errors:
        # Another kind of object: its spec errors would only be noise.
        raise SpecError(errors)
    name, namespace, errors = _parse_metadata(body.get("metadata"))
    spec: SLOTierSpec | None = None
    if "spec" not in body:
        errors.append(FieldError("spec", "Required value"))
    else:
        try:
            spec = parse_spec(body["spec"])
        except SpecError as err:
            errors += err.errors
    if errors or spec is None:
        raise SpecError(errors)
    return tier_from_spec(spec, name=name, namespace=namespace)


def tier_from_spec(spec: SLOTierSpec, *, name: str, namespace: str) -> Tier:
    """Convert a validated spec to the domain's SI units; routing value defaults to name."""
    return Tier(
        name=name,
        namespace=namespace,
        model=spec.model,
        slo=Slo(
            ttft_s=parse_duration(spec.slo.ttft),
            tpot_s=parse_duration(spec.slo.tpot),
            percentile=spec.slo.percentile,
            attainment_frac=spec.slo.attainment,
        ),
        pool=Pool(
            deployment=spec.pool.deployment,
            min_replicas=spec.pool.min_replicas,
            max_replicas=spec.pool.max_replicas,
            gpus_per_replica=spec.pool.gpus_per_replica,
            accelerator=spec.pool.accelerator,
        ),
        priority=spec.priority,
        borrow=spec.spillover.borrow,
        lend=spec.spillover.lend,
        scaling=Scaling(
            cold_start_s=parse_duration(spec.scaling.cold_start),
            scale_down_stabilization_s=parse_duration(spec.scaling.scale_down_stabilization),
            max_scale_up_replicas=spec.scaling.max_scale_up_replicas,
            max_scale_down_replicas=spec.scaling.max_scale_down_replicas,
            headroom=spec.scaling.headroom,
        ),
        routing_header=spec.routing.header,
        routing_value=spec.routing.value or name,
    )


def to_resource(tier: Tier) -> dict[str, Any]:
    """The SLOTier manifest of a domain `Tier` (inverse of `to_tier`, defaults written out)."""
    pool: dict[str, Any] = {
        "deployment": tier.pool.deployment,
        "minReplicas": tier.pool.min_replicas,
        "maxReplicas": tier.pool.max_replicas,
        "gpusPerReplica": tier.pool.gpus_per_replica,
    }
    if tier.pool.accelerator is not None:
        pool["accelerator"] = tier.pool.accelerator
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": tier.name, "namespace": tier.namespace},
        "spec": {
            "model": tier.model,
            "slo": {
                "ttft": format_duration(tier.slo.ttft_s),
                "tpot": format_duration(tier.slo.tpot_s),
                "percentile": tier.slo.percentile,
                "attainment": tier.slo.attainment_frac,
            },
            "priority": tier.priority,
            "pool": pool,
            "routing": {"header": tier.routing_header, "value": tier.routing_value or tier.name},
            "spillover": {"borrow": tier.borrow, "lend": tier.lend},
            "scaling": {
                "coldStart": format_duration(tier.scaling.cold_start_s),
                "scaleDownStabilization": format_duration(tier.scaling.scale_down_stabilization_s),
                "maxScaleUpReplicas": tier.scaling.max_scale_up_replicas,
                "maxScaleDownReplicas": tier.scaling.max_scale_down_replicas,
                "headroom": tier.scaling.headroom,
            },
        },
    }


# ----------------------------------------------------------------------------- files


def load_tiers_yaml(path: Path) -> list[Tier]:
    """Every SLOTier of a multi-document YAML file; all problems reported at once.

    Documents of another kind are rejected rather than skipped: a file handed to
    `tierscale plan --tiers` that silently loses a tier would plan the wrong cluster.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([FieldError("", f"cannot read file: {err.strerror}")], str(path)) from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise SpecError([FieldError("", f"not valid YAML: {err}")], str(path)) from None
    tiers: list[Tier] = []
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, (node, document) in enumerate(zip(nodes, documents, strict=True), start=1):
        if document is None:
            continue
        try:
            tier = _document_to_tier(document)
        except SpecError as err:
            errors += [_locate(error, node, index) for error in err.errors]
            continue
        if tier.key in seen:
            message = f"duplicate SLOTier {tier.key} (first in document {seen[tier.key]})"
            errors.append(_locate(FieldError("metadata.name", message), node, index))
            continue
        seen[tier.key] = index
        tiers.append(tier)
    if errors:
        raise SpecError(errors, str(path))
    if not tiers:
        raise SpecError([FieldError("", "no SLOTier documents in file")], str(path))
    return tiers


def _document_to_tier(document: object) -> Tier:
    if not isinstance(document, Mapping):
        raise SpecError([FieldError("", f"expected a mapping (an SLOTier), got {_show(document)}")])
    return to_tier(document)


def _locate(error: FieldError, node: yaml.Node, document: int) -> FieldError:
    """Attach the line of the deepest existing node on the error's path."""
    line = node.start_mark.line + 1
    current: yaml.Node = node
    for part in error.path.split(".") if error.path else ():
        if not isinstance(current, yaml.MappingNode):
            break
        match = next((v for k, v in current.value if getattr(k, "value", None) == part), None)
        if match is None:
            break
        current = match
        line = current.start_mark.line + 1
    return FieldError(error.path, error.message, line, document)


# ----------------------------------------------------------------------------- helpers


def _check_envelope(body: Mapping[str, object]) -> Iterator[FieldError]:
    if body.get("apiVersion") != API_VERSION:
        yield FieldError(
            "apiVersion", f"Invalid value: {_show(body.get('apiVersion'))}: expected {API_VERSION}"
        )
    if body.get("kind") != KIND:
        yield FieldError("kind", f"Invalid value: {_show(body.get('kind'))}: expected {KIND}")
    for key in body:
        if key not in _TOP_LEVEL_KEYS:
            yield FieldError(str(key), f'unknown field "{key}"')


def _parse_metadata(metadata: object) -> tuple[str, str, list[FieldError]]:
    if not isinstance(metadata, Mapping):
        return "", "", [FieldError("metadata.name", "Required value: name is required")]
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    errors: list[FieldError] = []
    for field, value in (("name", name), ("namespace", namespace)):
        if value is None or (field == "namespace" and value == ""):
            continue
        if not isinstance(value, str) or not _is_dns_subdomain(value):
            errors.append(
                FieldError(
                    f"metadata.{field}",
                    f"Invalid value: {_show(value)}: a lowercase RFC 1123 subdomain must consist "
                    "of lower case alphanumeric characters, '-' or '.', and must start and end "
                    "with an alphanumeric character",
                )
            )
    if name is None:
        errors.append(FieldError("metadata.name", "Required value: name is required"))
    ns = namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE
    return (name if isinstance(name, str) else ""), ns, errors


def _is_dns_subdomain(value: str) -> bool:
    return len(value) <= DNS_SUBDOMAIN_MAX_LENGTH and bool(_DNS_SUBDOMAIN_RE.fullmatch(value))


def _drop_nulls(value: object, model: type[BaseModel]) -> object:
    """Drop nulls of known fields, as the API server prunes them before defaulting.

    Unknown fields keep their null so they are still reported as unknown, as under
    kubectl's strict field validation.
    """
    if not isinstance(value, Mapping):
        return value
    fields = {info.alias or name: info.annotation for name, info in model.model_fields.items()}
    out: dict[object, object] = {}
    for key, child in value.items():
        if key not in fields:
            out[key] = child
        elif child is not None:
            kind = fields[key]
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                out[key] = _drop_nulls(child, kind)
            else:
                out[key] = child
    return out


def _field_error(detail: ErrorDetails, prefix: str) -> FieldError:
    path = ".".join([prefix, *(str(part) for part in detail["loc"])])
    return FieldError(path, _describe(detail, path))


def _describe(detail: ErrorDetails, path: str) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx", {})
    value = detail["input"]
    if kind == "missing":
        return "Required value"
    if kind == "extra_forbidden":
        return f'unknown field "{path}"'
    if kind in _TYPE_NAMES:
        return f"Invalid value: {_show(value)}: must be of type {_TYPE_NAMES[kind]}"
    if kind in _BOUND_PHRASES:
        key, phrase = _BOUND_PHRASES[kind]
        return f"Invalid value: {_show(value)}: {phrase} {_number(ctx[key])}"
    if kind == "string_pattern_mismatch":
        hint = " (a duration like 300ms, 5s or 1.5m)" if ctx["pattern"] == DURATION_PATTERN else ""
        return f"Invalid value: {_show(value)}: should match '{ctx['pattern']}'{hint}"
    if kind == "string_too_short":
        return f"Invalid value: {_show(value)}: should be at least {ctx['min_length']} chars long"
    if kind == "string_too_long":
        return f"Too long: may not be more than {ctx['max_length']} bytes"
    if kind == "value_error" and isinstance(value, Mapping):
        return f"Invalid value: {ctx['error']}"  # the API server omits object values too
    if kind == "value_error":
        return f"Invalid value: {_show(value)}: {ctx['error']}"
    return f"Invalid value: {_show(value)}: {detail['msg']}"


def _show(value: object) -> str:
    """A value as the API server prints it: JSON scalars, or the type of a collection."""
    if isinstance(value, Mapping):
        return '"object"'
    if isinstance(value, list | tuple):
        return '"array"'
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
