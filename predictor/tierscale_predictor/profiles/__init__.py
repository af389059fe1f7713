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
    """Step-time and per-request cost model of one vLLM replica (seconds).

    step_s = base_s + context_s_per_token * context_tokens
             + attention_s_per_token_pair * attention_pairs
             + max(prefill_s_per_token * prefill_tokens + decode cost(decode_seqs),
                   compute_s_per_token * (prefill_tokens + decode_seqs) - compute_floor_s)

    The first argument of the max is the memory-bound line (weights read once per step,
    in `base_s`; small per-token and per-sequence costs); the second the compute-bound
    line (every token through the linear layers at the GPU's sustained FLOP rate, which
    hides the weight-read floor `compute_floor_s` <= base_s). Together a roofline: large
    decode batches and long prefills are not linear from 1 to 1024 sequences.
    `attention_pairs` = sum over prefill chunks of (query, key) pairs: prefill attention
    grows with the context a chunk attends to.

    The decode cost is linear (`decode_s_per_seq`) unless `decode_knee_seqs > 0`: then the
    first `decode_knee_seqs` sequences cost `decode_s_per_seq` each and every further one
    `decode_s_per_seq_above_knee`. The knee exists because a measured curve asked for it
    (SABER's Qwen2.5-Coder-3B speed-vs-load is concave; no line fits it within 5%).

    Costs outside the engine step (they delay what the client sees, not the GPU):
    `request_overhead_s + request_overhead_s_per_prompt_token * prompt_tokens` before a
    request reaches the scheduler (HTTP, tokenisation, queueing into the engine);
    `first_token_overhead_s` on the first token; `output_s_per_token` on every output
    token (detokenise, stream), so token i (0 = first) reaches the client
    first_token_overhead_s + (i + 1) * output_s_per_token after the step that made it.
    All default to 0 (the step model alone).
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
    compute_s_per_token: float = 0.0
    compute_floor_s: float = 0.0
    attention_s_per_token_pair: float = 0.0
    request_overhead_s: float = 0.0
    request_overhead_s_per_prompt_token: float = 0.0
    first_token_overhead_s: float = 0.0
    output_s_per_token: float = 0.0
    vllm_version: str = ""

    def __post_init__(self) -> None:
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ProfileError(f"profile {self.name!r}: {name} must be finite and >= 0")
        if self.base_s <= 0.0:
            raise ProfileError(f"profile {self.name!r}: base_s must be > 0 (a step takes time)")
        if self.compute_floor_s > self.base_s:
            raise ProfileError(
                f"profile {self.name!r}: compute_floor_s must be <= base_s (the compute-bound "
                "line can only hide the part of the step floor that is weight reads)"
            )
        for name, upper in PHYSICAL_UPPER_BOUNDS.items():
            if getattr(self, name) > upper:
                raise ProfileError(
                    f"profile {self.name!r}: {name} = {getattr(self, name)} exceeds its "
                    f"physical bound {upper} (docs/predictor.md)"
                )
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

    def step_s(
        self,
        prefill_tokens: float,
        decode_seqs: float,
        context_tokens: float,
        attention_pairs: float = 0.0,
    ) -> float:
        """Duration of one engine step; context = KV tokens of the sequences in the step,
        attention_pairs = (query, key) pairs of its prefill chunks."""
        memory = self.prefill_s_per_token * prefill_tokens + self.decode_s(decode_seqs)
        compute = self.compute_s_per_token * (prefill_tokens + decode_seqs) - self.compute_floor_s
        return (
            self.base_s
            + self.context_s_per_token * context_tokens
            + self.attention_s_per_token_pair * attention_pairs
            + (memory if memory >= compute else compute)
        )

    def request_overhead_for(self, prompt_tokens: float) -> float:
        """Seconds between a request's arrival and its reaching the scheduler."""
        return self.request_overhead_s + self.request_overhead_s_per_prompt_token * prompt_tokens

    @property
    def has_overheads(self) -> bool:
        return (
            self.request_overhead_s > 0.0
            or self.request_overhead_s_per_prompt_token > 0.0
            or self.first_token_overhead_s > 0.0
            or self.output_s_per_token > 0.0
        )


def prefill_attention_pairs(computed_tokens: int, chunk_tokens: int) -> int:
    """(query, key) pairs of a prefill chunk: query j (1..n) attends to computed + j keys."""
    n = chunk_tokens
    return n * computed_tokens + n * (n + 1) // 2


_FLOAT_FIELDS = (
    "base_s",
    "prefill_s_per_token",
    "decode_s_per_seq",
    "context_s_per_token",
    "decode_s_per_seq_above_knee",
    "compute_s_per_token",
    "compute_floor_s",
    "attention_s_per_token_pair",
    "request_overhead_s",
    "request_overhead_s_per_prompt_token",
    "first_token_overhead_s",
    "output_s_per_token",
)

PHYSICAL_UPPER_BOUNDS: dict[str, float] = {
    "base_s": 0.5,
    "request_overhead_s": 1.0,
    "request_overhead_s_per_prompt_token": 1e-4,
    "first_token_overhead_s": 1.0,
    "output_s_per_token": 0.05,
}
"""Upper bounds no real replica exceeds (a step floor of 0.5 s, a second of HTTP and
tokenisation, 100 us to tokenise one prompt token, 50 ms of CPU per streamed token): a
fit or a profile beyond them is explaining something else (docs/predictor.md)."""
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
    "compute_s_per_token",
    "compute_floor_s",
    "attention_s_per_token_pair",
    "request_overhead_s",
    "request_overhead_s_per_prompt_token",
    "first_token_overhead_s",
    "output_s_per_token",
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
    version = data.get("vllm_version", "")
    if not isinstance(version, str):
        raise ProfileError(f"{origin}: field 'vllm_version' must be a string")
    kwargs["vllm_version"] = version
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
