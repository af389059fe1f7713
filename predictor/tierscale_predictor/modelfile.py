"""Versioned JSON model files (never pickle): a LatencyModel with its feature schema.

A model file is an artifact that outlives the code that wrote it, so it says what it is
(`kind`), which layout it uses (`schema_version`), which step-time features its
coefficients multiply (`features`) and where it came from (`provenance`). Loading refuses
anything else with a message that says what was found and what was expected. Writes are
atomic (temporary file + rename), so a failed write never leaves half a model behind.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from tierscale_predictor.latency import (
    DEFAULT_TAIL,
    SCHEMA_VERSION,
    Correction,
    LatencyModel,
    Provenance,
    TailParams,
)

KIND = "tierscale.latency-model"
FEATURES = (
    "intercept",
    "prefill_tokens",
    "decode_seqs",
    "decode_seqs_above_knee",
    "context_tokens",
)
"""Step-time features, in coefficient order; a file with another list is refused."""
ROOFLINE_FIELDS = ("compute_s_per_token", "compute_floor_s", "attention_s_per_token_pair")
"""Optional section 'roofline' (absent in older files: 0, the linear step model)."""
OVERHEAD_FIELDS = (
    "request_overhead_s",
    "request_overhead_s_per_prompt_token",
    "first_token_overhead_s",
    "output_s_per_token",
)
"""Optional section 'overheads' (absent in older files: 0, no cost outside the steps)."""


class ModelFileError(ValueError):
    """A model file cannot be used; the message names the file and the problem."""


def model_to_dict(model: LatencyModel) -> dict[str, Any]:
    return {
        "kind": KIND,
        "schema_version": model.schema_version,
        "name": model.name,
        "features": list(FEATURES),
        "coefficients_s": [
            model.base_s,
            model.prefill_s_per_token,
            model.decode_s_per_seq,
            model.decode_s_per_seq_above_knee,
            model.context_s_per_token,
        ],
        "decode_knee_seqs": model.decode_knee_seqs,
        "limits": {
            "max_num_batched_tokens": model.max_num_batched_tokens,
            "max_num_seqs": model.max_num_seqs,
            "kv_capacity_tokens": model.kv_capacity_tokens,
        },
        "tail": {
            "ttft_residual_steps": model.tail.ttft_residual_steps,
            "ttft_queue_steps": model.tail.ttft_queue_steps,
            "tpot_interference": model.tail.tpot_interference,
            "batch_limit_frac": model.tail.batch_limit_frac,
            "busy_limit_frac": model.tail.busy_limit_frac,
            "batch_spread": model.tail.batch_spread,
            "compute_excess": model.tail.compute_excess,
            "ttft_residual_bounded": model.tail.ttft_residual_bounded,
        },
        "roofline": {name: getattr(model, name) for name in ROOFLINE_FIELDS},
        "overheads": {name: getattr(model, name) for name in OVERHEAD_FIELDS},
        "correction": {
            "ttft_mult": model.correction.ttft_mult,
            "tpot_mult": model.correction.tpot_mult,
            "ttft_add_s": model.correction.ttft_add_s,
            "tpot_add_s": model.correction.tpot_add_s,
        },
        "provenance": {
            "source": model.provenance.source,
            "fitted_at": model.provenance.fitted_at,
            "rows": model.provenance.rows,
            "r2": _json_float(model.provenance.r2),
            "mape": _json_float(model.provenance.mape),
        },
    }


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ModelFileError(f"{where}: missing field {key!r}")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ModelFileError(f"{where}: field {key!r} has the wrong type ({value!r})")
    return value


def _num(data: dict[str, Any], key: str, where: str) -> float:
    return float(_get(data, key, (int, float), where))


def _num_or(data: dict[str, Any], key: str, default: float, where: str) -> float:
    """A number that files written before it was added leave out."""
    return _num(data, key, where) if key in data else default


def _optional_section(
    data: dict[str, Any], key: str, names: tuple[str, ...], origin: str
) -> dict[str, float]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise ModelFileError(f"{origin}: field {key!r} must be an object")
    return {name: _num(section, name, f"{origin}: {key}") for name in names if name in section}


def model_from_dict(data: Any, *, origin: str) -> LatencyModel:
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ModelFileError(f"{origin}: not a tierscale latency model (field 'kind' != {KIND!r})")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(
            f"{origin}: schema_version is {version!r}, this tierscale reads {SCHEMA_VERSION}; "
            "refit the model with `tierscale fit`"
        )
    features = data.get("features")
    if features != list(FEATURES):
        raise ModelFileError(
            f"{origin}: feature schema {features!r} differs from {list(FEATURES)!r}; "
            "refit the model with `tierscale fit`"
        )
    coeffs = _get(data, "coefficients_s", list, origin)
    if len(coeffs) != len(FEATURES) or not all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in coeffs
    ):
        raise ModelFileError(f"{origin}: 'coefficients_s' must be {len(FEATURES)} numbers")
    limits = _get(data, "limits", dict, origin)
    tail = _get(data, "tail", dict, origin)
    corr = _get(data, "correction", dict, origin)
    prov = _get(data, "provenance", dict, origin)
    kv = limits.get("kv_capacity_tokens")
    if kv is not None and (isinstance(kv, bool) or not isinstance(kv, int)):
        raise ModelFileError(f"{origin}: limits.kv_capacity_tokens must be an integer or null")
    r2, mape = prov.get("r2"), prov.get("mape")
    extra = {
        **_optional_section(data, "roofline", ROOFLINE_FIELDS, origin),
        **_optional_section(data, "overheads", OVERHEAD_FIELDS, origin),
    }
    try:
        return LatencyModel(
            base_s=float(coeffs[0]),
            prefill_s_per_token=float(coeffs[1]),
            decode_s_per_seq=float(coeffs[2]),
            decode_s_per_seq_above_knee=float(coeffs[3]),
            context_s_per_token=float(coeffs[4]),
            decode_knee_seqs=int(_get(data, "decode_knee_seqs", int, origin)),
            max_num_batched_tokens=int(_get(limits, "max_num_batched_tokens", int, origin)),
            max_num_seqs=int(_get(limits, "max_num_seqs", int, origin)),
            kv_capacity_tokens=kv,
            tail=TailParams(
                _num(tail, "ttft_residual_steps", origin),
                _num(tail, "ttft_queue_steps", origin),
                _num(tail, "tpot_interference", origin),
                _num(tail, "batch_limit_frac", origin),
                # Files written before these load with the shipped defaults: they are the
                # model's structure, not something the file's fit measured.
                _num_or(tail, "busy_limit_frac", DEFAULT_TAIL.busy_limit_frac, origin),
                _num_or(tail, "batch_spread", DEFAULT_TAIL.batch_spread, origin),
                _num_or(tail, "compute_excess", DEFAULT_TAIL.compute_excess, origin),
                _num_or(tail, "ttft_residual_bounded", DEFAULT_TAIL.ttft_residual_bounded, origin),
            ),
            correction=Correction(
                _num(corr, "ttft_mult", origin),
                _num(corr, "tpot_mult", origin),
                float(corr.get("ttft_add_s", 0.0)),
                float(corr.get("tpot_add_s", 0.0)),
            ),
            schema_version=SCHEMA_VERSION,
            provenance=Provenance(
                str(_get(prov, "source", str, origin)),
                str(prov.get("fitted_at", "")),
                int(prov.get("rows", 0)),
                None if r2 is None else float(r2),
                None if mape is None else float(mape),
            ),
            name=str(data.get("name", "")),
            **extra,
        )
    except ValueError as err:
        if isinstance(err, ModelFileError):
            raise
        raise ModelFileError(f"{origin}: {err}") from err


def save_model(model: LatencyModel, path: Path) -> None:
    """Write atomically: the file is either the old one or the complete new one."""
    text = json.dumps(model_to_dict(model), indent=2, sort_keys=False) + "\n"
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(path: Path) -> LatencyModel:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read: {err.strerror}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelFileError(
            f"{path}:{err.lineno}: column {err.colno}: invalid JSON: {err.msg}"
        ) from err
    return model_from_dict(data, origin=str(path))
