"""Step-time profiles: how long one vLLM engine step takes on one (model, GPU).

A profile is the only physical input of the engine model and of the latency predictor, so
it carries its public sources with it. Bundled profiles live beside this module as JSON
(`<name>.json`); `load_profile` parses them at the edge and the core only sees
`StepProfile`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

PROFILE_SCHEMA = "tierscale.step-profile/v1"
"""`schema` value every profile JSON must carry."""


class ProfileError(ValueError):
    """A profile file is missing, malformed or physically impossible."""


@dataclass(frozen=True, slots=True)
class StepProfile:
    """Linear step-time model of one vLLM replica (seconds).

    step_s = base_s + prefill_s_per_token * prefill_tokens + decode cost(decode_seqs)
             + context_s_per_token * context_tokens

    The decode cost is linear (`decode_s_per_seq`) unless `decode_knee_seqs > 0`: then the
    first `decode_knee_seqs` sequences cost `decode_s_per_seq` each and every further one
    `decode_s_per_seq_above_knee`. The knee exists because a measured curve asked for it
    (SABER's Qwen2.5-Coder-3B speed-vs-load is concave; no line fits it within 5%).
    """

    name: str
    model: str
    gpu: str
    base_s: float
    prefill_s_per_token: float
    decode_s_per_seq: float
    context_s_per_token: float
    kv_capacity_tokens: int
    block_size_tokens: int = 16
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 1024
    sources: tuple[str, ...] = ()
    decode_knee_seqs: int = 0
    decode_s_per_seq_above_knee: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "base_s",
            "prefill_s_per_token",
            "decode_s_per_seq",
            "context_s_per_token",
            "decode_s_per_seq_above_knee",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ProfileError(f"profile {self.name!r}: {name} must be finite and >= 0")
        if self.base_s <= 0.0:
            raise ProfileError(f"profile {self.name!r}: base_s must be > 0 (a step takes time)")
        for name in ("kv_capacity_tokens", "block_size_tokens", "max_num_batched_tokens"):
            if getattr(self, name) < 1:
                raise ProfileError(f"profile {self.name!r}: {name} must be >= 1")
        if self.max_num_seqs < 1 or self.decode_knee_seqs < 0:
            raise ProfileError(f"profile {self.name!r}: max_num_seqs >= 1, knee >= 0")

    @property
    def kv_capacity_blocks(self) -> int:
        return self.kv_capacity_tokens // self.block_size_tokens

    def decode_s(self, decode_seqs: float) -> float:
        """Decode cost of a step with `decode_seqs` sequences (concave piecewise linear)."""
        knee = self.decode_knee_seqs
        if knee <= 0 or decode_seqs <= knee:
            return self.decode_s_per_seq * decode_seqs
        return self.decode_s_per_seq * knee + self.decode_s_per_seq_above_knee * (
            decode_seqs - knee
        )

    def step_s(self, prefill_tokens: float, decode_seqs: float, context_tokens: float) -> float:
        """Duration of one engine step; context = KV tokens of the sequences in the step."""
        return (
            self.base_s
            + self.prefill_s_per_token * prefill_tokens
            + self.decode_s(decode_seqs)
            + self.context_s_per_token * context_tokens
        )


_FLOAT_FIELDS = (
    "base_s",
    "prefill_s_per_token",
    "decode_s_per_seq",
    "context_s_per_token",
    "decode_s_per_seq_above_knee",
)
_INT_FIELDS = (
    "kv_capacity_tokens",
    "block_size_tokens",
    "max_num_batched_tokens",
    "max_num_seqs",
    "decode_knee_seqs",
)


def _number(data: dict[str, Any], key: str, origin: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{origin}: field {key!r} must be a number, got {value!r}")
    return float(value)


def _integer(data: dict[str, Any], key: str, origin: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{origin}: field {key!r} must be an integer, got {value!r}")
    return value


_OPTIONAL = {
    "decode_s_per_seq_above_knee",
    "block_size_tokens",
    "max_num_batched_tokens",
    "max_num_seqs",
    "decode_knee_seqs",
}


def profile_from_dict(data: Any, *, origin: str) -> StepProfile:
    """Parse one profile document; `origin` names the file in error messages."""
    if not isinstance(data, dict):
        raise ProfileError(f"{origin}: expected a JSON object")
    if data.get("schema") != PROFILE_SCHEMA:
        raise ProfileError(
            f"{origin}: field 'schema' is {data.get('schema')!r}, expected {PROFILE_SCHEMA!r}"
        )
    kwargs: dict[str, Any] = {}
    for key in ("name", "model", "gpu"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise ProfileError(f"{origin}: field {key!r} must be a non-empty string")
        kwargs[key] = value
    for keys, parse in ((_FLOAT_FIELDS, _number), (_INT_FIELDS, _integer)):
        for key in keys:
            if key in data:
                kwargs[key] = parse(data, key, origin)
            elif key not in _OPTIONAL:
                raise ProfileError(f"{origin}: missing field {key!r}")
    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ProfileError(f"{origin}: field 'sources' must be a list of strings")
    kwargs["sources"] = tuple(sources)
    return StepProfile(**kwargs)


def profile_to_dict(profile: StepProfile) -> dict[str, Any]:
    out: dict[str, Any] = {"schema": PROFILE_SCHEMA}
    for f in fields(StepProfile):
        value = getattr(profile, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def bundled_profile_names() -> tuple[str, ...]:
    root = resources.files(__name__)
    return tuple(
        sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))
    )


def load_profile(name: str) -> StepProfile:
    """A bundled profile by name (e.g. 'llama-3.1-8b-h100')."""
    names = bundled_profile_names()
    if name not in names:
        raise ProfileError(f"unknown profile {name!r}; bundled profiles: {', '.join(names)}")
    resource = resources.files(__name__).joinpath(f"{name}.json")
    origin = f"bundled profile {name}.json"
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ProfileError(f"{origin}: line {err.lineno} column {err.colno}: {err.msg}") from err
    profile = profile_from_dict(data, origin=origin)
    if profile.name != name:
        raise ProfileError(f"{origin}: field 'name' is {profile.name!r}, expected {name!r}")
    return profile
