"""Scenario files: the YAML schema (pydantic, `extra=forbid`), loading and clear errors.

A scenario says everything a run needs and nothing about a policy's internals: tiers,
served models and their step-time profiles, the workload, the control loop, the GPU
budget, how requests are scored and which load multipliers a sweep visits.

Each tier embeds the real SLOTier spec (`tierscale.api.models.SLOTierSpec`, camelCase as
in `kubectl apply`), parsed by the operator's own codec, so a scenario's tier has the
CRD's defaults, validation and error messages, and there is one definition of every
default. Beside the spec sits only what a cluster tells the operator elsewhere (the tier's
name and namespace, its Deployment's vLLM arguments) and what the simulated world needs
(how long a replica really takes to load, the fleet at t=0, synthetic request lengths, an
end-to-end SLA for scoring).

Any file from any path must run, so every mistake is reported as
`FILE: field.path: what was expected`. The schema is documented in docs/scenarios.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from tierscale.api import codec
from tierscale.api.durations import parse_duration
from tierscale.api.models import DNS_LABEL_PATTERN, SLOTierSpec
from tierscale.domain.tiers import Tier
from tierscale_sim.policies.registry import POLICY_NAMES as POLICY_NAMES
from tierscale_sim.scoring import Criterion


class ScenarioError(ValueError):
    """A scenario file is unusable; the message names the file, the field and the fix."""


def _field_problem(field: str, message: str) -> PydanticCustomError:
    """An error about `field` (dotted, relative to the validated object), not the object."""
    return PydanticCustomError("scenario_field", message, {"field": field})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokensSpec(_Spec):
    """Token lengths of synthetic requests."""

    prompt_mean: float = Field(gt=0)
    output_mean: float = Field(gt=0)
    dist: Literal["fixed", "exponential", "lognormal"] = "fixed"
    cv: float = Field(default=1.0, gt=0)
    prompt_max: int | None = Field(default=None, ge=1)
    """Longest prompt: the tier's pool runs `--max-model-len` at this value, which cuts a
    heavy tail and sets the top of its token histograms' buckets (as vLLM's do; the
    operator reads the flag from the Deployment); None: no limit, Llama-3.1's context
    length for the buckets."""
    output_max: int | None = Field(default=None, ge=1)
    """Longest output (the request's max_tokens); None: no limit."""


class EngineSpec(_Spec):
    """vLLM engine arguments of the tier's Deployment.

    In a cluster they are read from the Deployment's container arguments, not from the
    SLOTier; unset, the model's (`models.<name>`), else the step-time profile's.
    """

    max_num_seqs: int | None = Field(default=None, ge=1)
    """--max-num-seqs: requests one replica batches at most."""
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    """--max-num-batched-tokens: the chunked-prefill token budget of one step."""


class TierSimSpec(_Spec):
    """The simulated world around one tier: what no SLOTier says."""

    cold_start_s: float | None = Field(default=None, ge=0)
    """Reality: seconds from "replica requested" to "replica serving" in this simulated
    pool. Unset: `spec.scaling.coldStart`, i.e. what the tier tells the planner is exact."""
    initial_replicas: int | None = Field(default=None, ge=0)
    """Replicas Ready at t=0; unset: `spec.pool.minReplicas`."""
    tokens: TokensSpec | None = None
    """Synthetic workloads: this tier's request lengths (else the workload's)."""
    e2e_slo_s: float | None = Field(default=None, gt=0)
    """End-to-end SLA, used when the scenario's criterion is `e2e` (SABER)."""


_COMPACT_TIER_KEYS: Mapping[str, str] = {
    "ttft_s": "spec.slo.ttft (a duration, e.g. 500ms)",
    "tpot_s": "spec.slo.tpot (a duration, e.g. 50ms)",
    "percentile": "spec.slo.percentile",
    "attainment": "spec.slo.attainment",
    "model": "spec.model",
    "priority": "spec.priority",
    "min_replicas": "spec.pool.minReplicas (the CRD's default is 0, the old form's was 1)",
    "max_replicas": "spec.pool.maxReplicas (required; the old form's default was 10)",
    "gpus_per_replica": "spec.pool.gpusPerReplica",
    "borrow": "spec.spillover.borrow",
    "lend": "spec.spillover.lend",
    "cold_start_s": "spec.scaling.coldStart (declared) and sim.cold_start_s (reality)",
    "scale_down_stabilization_s": "spec.scaling.scaleDownStabilization",
    "max_scale_up_replicas": "spec.scaling.maxScaleUpReplicas",
    "max_scale_down_replicas": "spec.scaling.maxScaleDownReplicas",
    "initial_replicas": "sim.initial_replicas",
    "tokens": "sim.tokens",
    "e2e_slo_s": "sim.e2e_slo_s",
    "max_num_seqs": "engine.max_num_seqs",
    "max_num_batched_tokens": "engine.max_num_batched_tokens",
}
"""Keys of the compact tier form scenarios used before they embedded the SLOTier spec."""


class ScenarioTier(_Spec):
    """One SLO tier: its SLOTier (name, namespace, spec) plus what the simulator needs."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)
    """The SLOTier's metadata.name; the tier key is `namespace/name`."""
    namespace: str = Field(
        default="default", min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN
    )
    """The SLOTier's metadata.namespace."""
    spec: SLOTierSpec
    """The SLOTier's spec, exactly as `kubectl apply` takes it; `spec.model` is a key of
    the scenario's `models`."""
    engine: EngineSpec = EngineSpec()
    sim: TierSimSpec = TierSimSpec()

    @model_validator(mode="before")
    @classmethod
    def _not_the_compact_form(cls, data: object) -> object:
        if isinstance(data, Mapping):
            old = [key for key in data if key in _COMPACT_TIER_KEYS]
            if old:
                moves = "; ".join(f"{key} -> {_COMPACT_TIER_KEYS[key]}" for key in old)
                raise _field_problem(
                    "", f"tiers embed the SLOTier spec now (docs/scenarios.md); move {moves}"
                )
        return data

    @field_validator("spec", mode="before")
    @classmethod
    def _through_the_codec(cls, value: object) -> object:
        """Parse with the operator's codec: the API server's null pruning and messages."""
        if isinstance(value, SLOTierSpec):
            return value
        try:
            return codec.parse_spec(value)
        except codec.SpecError as err:
            raise PydanticCustomError(
                "slotier_spec",
                "invalid SLOTier spec",
                {"field_errors": tuple((e.path, e.message) for e in err.errors)},
            ) from None

    @model_validator(mode="after")
    def _initial_fits_the_pool(self) -> ScenarioTier:
        initial = self.sim.initial_replicas
        if initial is not None and initial > self.spec.pool.max_replicas:
            raise _field_problem(
                "sim.initial_replicas",
                f"must be <= spec.pool.maxReplicas ({self.spec.pool.max_replicas}), got {initial}",
            )
        return self

    @property
    def cold_start_s(self) -> float:
        """How long this pool's simulated replicas take to load (reality)."""
        if self.sim.cold_start_s is not None:
            return self.sim.cold_start_s
        return parse_duration(self.spec.scaling.cold_start)

    @property
    def initial_replicas(self) -> int:
        """Replicas Ready at t=0."""
        if self.sim.initial_replicas is not None:
            return self.sim.initial_replicas
        return self.spec.pool.min_replicas


class RealitySpec(_Spec):
    """The engine that plays reality, where it differs from the model the policies are given.

    Every policy (the planner's latency model, PolyServe's and SABER's admission tests,
    Dynamo's profiles) is built from the declared profile and engine arguments; the
    simulated replicas run these instead. The oracle and the hindsight baselines measure
    capacity on this true engine. Unset: reality is exactly the declared model.
    """

    step_cost_x: float = Field(default=1.0, gt=0)
    """Multiplies every term of the step time (a slower or faster GPU, kernel, driver)."""
    prefill_cost_x: float = Field(default=1.0, gt=0)
    """Further multiplies the per-prefill-token term."""
    decode_cost_x: float = Field(default=1.0, gt=0)
    """Further multiplies the per-decode-sequence terms."""
    request_overhead_s: float = Field(default=0.0, ge=0, le=1.0)
    """Seconds between a request's arrival and its reaching the scheduler (HTTP,
    tokenisation): delays its first token, costs no GPU time."""
    request_overhead_s_per_prompt_token: float = Field(default=0.0, ge=0, le=1e-4)
    """The same, per prompt token."""
    output_s_per_token: float = Field(default=0.0, ge=0, le=0.05)
    """Seconds each output token takes to reach the client after the step that made it
    (detokenise, stream): token i arrives (i + 1) x this later; TPOT grows by it."""
    max_num_seqs: int | None = Field(default=None, ge=1)
    """vLLM's batch limit the replicas really run with (all pools of this model)."""

    @property
    def is_exact(self) -> bool:
        return self == RealitySpec()


class ModelSpec(_Spec):
    profile: str = Field(min_length=1)
    """Bundled step-time profile name, e.g. llama-3.1-8b-h100."""
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    reality: RealitySpec = RealitySpec()
    """Where the engine playing reality differs from the declared model (model mismatch)."""


class TraceSpec(_Spec):
    path: str
    """CSV path; `${VAR}` is expanded, relative paths are relative to the scenario file."""
    start_s: float = Field(default=0.0, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    time_scale: float = Field(default=1.0, gt=0)
    peak_rate_rps: float | None = Field(default=None, gt=0)
    peak_window_s: float = Field(default=60.0, gt=0)
    rate_scale: float = Field(default=1.0, gt=0)


class RateSpec(_Spec):
    kind: Literal["constant", "step", "diurnal"]
    rate_rps: float | None = Field(default=None, ge=0)
    levels: list[tuple[float, float]] | None = None
    """step: [start_s, rate_rps] pairs."""
    min_rate_rps: float | None = Field(default=None, ge=0)
    peak_rate_rps: float | None = Field(default=None, ge=0)
    period_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> RateSpec:
        need = {
            "constant": ("rate_rps",),
            "step": ("levels",),
            "diurnal": ("min_rate_rps", "peak_rate_rps", "period_s"),
        }[self.kind]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"rate kind {self.kind!r} needs {', '.join(missing)}")
        return self


def _check_mix(mix: dict[str, float]) -> dict[str, float]:
    if any(share < 0 for share in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"shares must be >= 0 and not all 0, got {mix}")
    return mix


class MixPhaseSpec(_Spec):
    start_s: float = Field(ge=0)
    mix: dict[str, float]

    @field_validator("mix")
    @classmethod
    def _shares(cls, mix: dict[str, float]) -> dict[str, float]:
        return _check_mix(mix)


_SYNTHETIC_ONLY: Mapping[str, str] = {
    "arrivals": "only for a synthetic workload (`rate`): a trace replays its own arrival"
    " times (to make a trace burstier or calmer, use trace.time_scale or trace.rate_scale)",
    "cv": "only for a synthetic workload (`rate`) with arrivals: gamma; a trace replays its"
    " own arrival times",
    "duration_s": "only for a synthetic workload (`rate`); slice a trace with"
    " trace.start_s and trace.duration_s",
    "tokens": "only for a synthetic workload (`rate`): a trace carries every request's"
    " prompt and output lengths",
}
"""Workload keys that a trace workload would silently ignore, and what to do instead."""


class WorkloadSpec(_Spec):
    trace: TraceSpec | None = None
    rate: RateSpec | None = None
    duration_s: float | None = Field(default=None, gt=0)
    """Synthetic workloads: horizon length (required)."""
    arrivals: Literal["poisson", "gamma"] = "poisson"
    cv: float = Field(default=1.0, gt=0)
    """Coefficient of variation of inter-arrival times for `gamma` (bursty when > 1)."""
    tier_mix: dict[str, float] | None = None
    """tier name -> share of requests (normalised); or use mix_phases."""
    mix_phases: list[MixPhaseSpec] | None = None
    tokens: TokensSpec | None = None
    ttft_slo_choices_s: list[float] | None = None
    """PolyServe: each request draws its TTFT SLO uniformly from these."""
    max_requests: int | None = Field(default=None, ge=1)
    """Synthetic workloads: keep only the first N arrivals (SABER runs 100 requests)."""

    @field_validator("tier_mix")
    @classmethod
    def _shares(cls, mix: dict[str, float] | None) -> dict[str, float] | None:
        return None if mix is None else _check_mix(mix)

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadSpec:
        if (self.trace is None) == (self.rate is None):
            raise ValueError("give exactly one of `trace` or `rate`")
        if self.rate is not None and self.duration_s is None:
            raise ValueError("a synthetic workload (`rate`) needs duration_s")
        if self.tier_mix is not None and self.mix_phases is not None:
            raise ValueError("give tier_mix or mix_phases, not both")
        if self.trace is not None:
            # A trace brings its own arrivals, lengths and horizon: these would do nothing.
            for name in sorted(self.model_fields_set & _SYNTHETIC_ONLY.keys()):
                raise _field_problem(name, _SYNTHETIC_ONLY[name])
        if self.mix_phases is not None:
            starts = [p.start_s for p in self.mix_phases]
            if not starts or starts != sorted(starts) or starts[0] != 0.0:
                raise _field_problem(
                    "mix_phases",
                    f"phases must start at 0 and be in time order, got start_s {starts}",
                )
        return self


class SweepSpec(_Spec):
    rate_multipliers: list[float] = Field(min_length=1)
    """Load points of `--sweep`: multiply the workload's rate (synthetic) or density (trace)."""
    attainment_target: float | None = Field(default=None, gt=0, le=1)
    """Goodput = highest load whose attainment over all requests reaches this; None = every
    tier must reach its own target."""
    base_rate_rps: float | None = Field(default=None, gt=0)
    """Rate that multiplier 1.0 means, for reporting goodput in req/s."""


class StaticSpec(_Spec):
    scale_factors: list[float] = Field(default=[0.75, 1.0, 1.25], min_length=1)
    """Hindsight search: candidate fleets are the oracle's peak sizing times these."""
    max_num_seqs_choices: list[int] | None = None
    """Also search the engine's max_num_seqs (SABER's baseline)."""
    refine_steps: int = Field(default=3, ge=0)
    """When no candidate meets every tier: extra runs, each moving one replica from the
    tier with the most attainment to spare to the neediest one."""


class OracleSpec(_Spec):
    headroom_factors: list[float] = Field(default=[1.0, 1.1, 1.25, 1.5], min_length=1)
    """Capacity divisors tried in order; the first fleet meeting every tier is kept (the
    first one if none does)."""

    @model_validator(mode="after")
    def _at_least_one(self) -> OracleSpec:
        if any(f < 1.0 for f in self.headroom_factors):
            raise ValueError(
                "headroom_factors must be >= 1 (the oracle never sizes below capacity)"
            )
        return self


class TuningSpec(_Spec):
    """Grids of the hindsight-tuned baselines (`hpa-tuned`, `keda-tuned`): every value is
    simulated, and each tier keeps the cheapest one that met its target in this run."""

    hpa_targets: list[float] = Field(default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9], min_length=1)
    """Mean KV-cache usage per replica (0..1]."""
    keda_targets: list[float] = Field(default=[0.25, 0.5, 1.0, 2.0, 5.0, 10.0], min_length=1)
    """Waiting requests per replica."""

    @model_validator(mode="after")
    def _in_range(self) -> TuningSpec:
        if any(not 0 < t <= 1 for t in self.hpa_targets):
            raise _field_problem("hpa_targets", "KV-cache usage targets must be in (0, 1]")
        if any(t <= 0 for t in self.keda_targets):
            raise _field_problem("keda_targets", "queue targets must be > 0")
        return self


class ScenarioSpec(_Spec):
    name: str
    description: str = ""
    models: dict[str, ModelSpec] = Field(min_length=1)
    """Served model name (the SLOTiers' `spec.model`) -> its step-time profile."""
    tiers: list[ScenarioTier] = Field(min_length=1)
    workload: WorkloadSpec
    control_interval_s: float = Field(default=15.0, gt=0)
    metrics_window_s: float = Field(default=60.0, gt=0)
    warmup_s: float = Field(default=0.0, ge=0)
    """Requests arriving earlier are simulated but not scored (steady-state benchmarks)."""
    budget_gpus: int | None = Field(default=None, ge=1)
    criterion: Criterion = Criterion.TTFT_TPOT
    policies: list[str] = Field(default=["tierscale", "isolated", "hpa", "keda", "static"])
    seeds: int = Field(default=3, ge=1)
    sweep: SweepSpec | None = None
    static: StaticSpec = StaticSpec()
    oracle: OracleSpec = OracleSpec()
    tuning: TuningSpec = TuningSpec()
    single_pool: bool = False
    """All tiers share the first tier's replicas (one Deployment serving several task
    types, as in SABER); the other tiers' pools stay empty."""

    @model_validator(mode="before")
    @classmethod
    def _no_scenario_wide_cold_start(cls, data: object) -> object:
        if isinstance(data, Mapping) and "cold_start_s" in data:
            raise _field_problem(
                "cold_start_s",
                "moved into each tier: spec.scaling.coldStart (what the tier tells the"
                " planner) and, only where the simulated replicas differ, sim.cold_start_s"
                " (docs/scenarios.md)",
            )
        return data

    @model_validator(mode="after")
    def _cross_refs(self) -> ScenarioSpec:
        self._check_tiers()
        unknown = [p for p in self.policies if p not in POLICY_NAMES]
        if unknown:
            raise _field_problem(
                "policies", f"unknown policies {unknown}; expected some of {list(POLICY_NAMES)}"
            )
        self._check_workload()
        return self

    def _check_tiers(self) -> None:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise _field_problem(
                "tiers", f"names must be unique (workload mixes refer to them), got {names}"
            )
        owner_by_deployment: dict[str, str] = {}
        for i, t in enumerate(self.tiers):
            if t.spec.model not in self.models:
                raise _field_problem(
                    f"tiers.{i}.spec.model",
                    f"{t.spec.model!r} is not a key of models {list(self.models)}",
                )
            deployment = f"{t.namespace}/{t.spec.pool.deployment}"
            owner = owner_by_deployment.setdefault(deployment, t.name)
            if owner != t.name:
                raise _field_problem(
                    f"tiers.{i}.spec.pool.deployment",
                    f"Deployment {deployment} is already the pool of tier {owner!r};"
                    " one SLOTier owns one Deployment",
                )

    def _check_workload(self) -> None:
        names = [t.name for t in self.tiers]
        w = self.workload
        mixes = [("workload.tier_mix", w.tier_mix)] if w.tier_mix else []
        mixes += [(f"workload.mix_phases.{i}.mix", p.mix) for i, p in enumerate(w.mix_phases or [])]
        for where, mix in mixes:
            bad = sorted(set(mix) - set(names))
            if bad:
                raise _field_problem(where, f"names unknown tiers {bad}; tiers are {names}")
        if w.trace is not None:
            for i, t in enumerate(self.tiers):
                if t.sim.tokens is not None:
                    raise _field_problem(
                        f"tiers.{i}.sim.tokens",
                        "only for a synthetic workload (`rate`): a trace carries every"
                        " request's prompt and output lengths",
                    )
        if w.rate is not None and w.tokens is None:
            lacking = [t.name for t in self.tiers if t.sim.tokens is None]
            if lacking:
                raise _field_problem(
                    "workload.tokens",
                    f"required: tiers {lacking} have no sim.tokens of their own",
                )
        if w.duration_s is not None and self.warmup_s >= w.duration_s:
            raise _field_problem(
                "warmup_s",
                f"must be shorter than workload.duration_s ({w.duration_s:g}), got"
                f" {self.warmup_s:g}: nothing would be scored",
            )


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [line for detail in err.errors() for line in _error_lines(detail)]
    head = f"scenario {path}: invalid ({len(lines)} error(s))"
    return "\n".join([head, *(f"  {line}" for line in lines)])


def _error_lines(detail: ErrorDetails) -> list[str]:
    loc = [str(x) for x in detail["loc"]]
    ctx = detail.get("ctx", {})
    if detail["type"] == "slotier_spec":
        # The codec's paths start at `spec`, which is the last element of loc.
        return [".".join([*loc[:-1], p]) + f": {m}" for p, m in ctx["field_errors"]]
    if detail["type"] == "scenario_field":
        return [".".join(p for p in [*loc, ctx["field"]] if p) + f": {detail['msg']}"]
    got = detail.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    return [f"{'.'.join(loc) or '(top level)'}: {detail['msg']} (got {shown})"]


def load_scenario(path: Path) -> ScenarioSpec:
    """Read and validate a scenario file, raising ScenarioError with file and field."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ScenarioError(f"scenario {path}: cannot read ({err.strerror})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScenarioError(f"scenario {path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {path}: expected a mapping at the top level")
    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(_format_error(path, err)) from None


def resolve_path(raw: str, scenario_path: Path, env: Mapping[str, str] | None = None) -> Path:
    """Expand `${VAR}` (environment) and resolve relative to the scenario file."""
    environ = os.environ if env is None else env
    expanded = raw
    for key, value in environ.items():
        expanded = expanded.replace("${" + key + "}", value)
    if "${" in expanded:
        raise ScenarioError(
            f"scenario {scenario_path}: workload.trace.path {raw!r} uses an unset variable "
            "(set it, e.g. TIERSCALE_TRACE_DIR=/path/to/traces, or pass --trace-dir)"
        )
    p = Path(expanded)
    return p if p.is_absolute() else (scenario_path.parent / p).resolve()


def tiers_of(spec: ScenarioSpec) -> list[Tier]:
    """The tiers as their SLOTiers declare them: what every policy is given.

    Converted by the operator's codec, so a scenario tier means what the same SLOTier
    means in a cluster; the pool also carries its Deployment's engine arguments (the
    tier's `engine`, else its model's; `--max-model-len` from the tier's prompt limit),
    which the operator reads from the Deployment.
    """
    out: list[Tier] = []
    for t in spec.tiers:
        tier = codec.tier_from_spec(t.spec, name=t.name, namespace=t.namespace)
        model = spec.models[t.spec.model]
        tokens = t.sim.tokens or spec.workload.tokens
        pool = replace(
            tier.pool,
            max_num_seqs=t.engine.max_num_seqs or model.max_num_seqs,
            max_num_batched_tokens=t.engine.max_num_batched_tokens or model.max_num_batched_tokens,
            max_model_len=tokens.prompt_max if tokens is not None else None,
        )
        out.append(replace(tier, pool=pool))
    return out


def fleet_tiers_of(spec: ScenarioSpec) -> list[Tier]:
    """The tiers the simulated fleet runs: as declared, except that each pool's replicas
    take the scenario's real cold start (`sim.cold_start_s`, by default the declared one)."""
    return [
        replace(tier, scaling=replace(tier.scaling, cold_start_s=t.cold_start_s))
        for t, tier in zip(spec.tiers, tiers_of(spec), strict=True)
    ]
