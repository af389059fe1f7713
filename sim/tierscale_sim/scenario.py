"""Scenario files: the YAML schema (pydantic, `extra=forbid`), loading and clear errors.

A scenario says everything a run needs and nothing about a policy's internals: tiers (in a
compact form converted straight to domain `Tier`s), served models and their step-time
profiles, the workload, the control loop, the GPU budget, how requests are scored and
which load multipliers a sweep visits. Any file from any path must run, so every
mistake is reported as `FILE: field.path: what was expected (got ...)`. The schema is
documented in docs/scenarios.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierscale.domain.tiers import GpuBudget, Pool, Scaling, Slo, Tier
from tierscale_sim.scoring import Criterion

POLICY_NAMES = ("tierscale", "isolated", "hpa", "keda", "static", "polyserve", "saber", "oracle")


class ScenarioError(ValueError):
    """A scenario file is unusable; the message names the file, the field and the fix."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokensSpec(_Spec):
    """Token lengths of synthetic requests."""

    prompt_mean: float = Field(gt=0)
    output_mean: float = Field(gt=0)
    dist: Literal["fixed", "exponential", "lognormal"] = "fixed"
    cv: float = Field(default=1.0, gt=0)


class TierSpec(_Spec):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    namespace: str = "default"
    model: str | None = None
    """Key of `models`; defaults to the only model."""
    ttft_s: float = Field(gt=0)
    tpot_s: float = Field(gt=0)
    percentile: float = Field(default=99.0, gt=0, lt=100)
    attainment: float = Field(default=0.99, gt=0, le=1)
    e2e_slo_s: float | None = Field(default=None, gt=0)
    """End-to-end SLA, used when the scenario's criterion is `e2e` (SABER)."""
    priority: int = 0
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    initial_replicas: int | None = Field(default=None, ge=0)
    """Replicas Ready at t=0; defaults to min_replicas."""
    gpus_per_replica: int = Field(default=1, ge=1)
    borrow: bool = True
    lend: bool = True
    cold_start_s: float | None = Field(default=None, ge=0)
    """Defaults to the scenario's cold_start_s."""
    scale_down_stabilization_s: float = Field(default=300.0, ge=0)
    max_scale_up_replicas: int = Field(default=4, ge=1)
    max_scale_down_replicas: int = Field(default=1, ge=1)
    tokens: TokensSpec | None = None
    """Synthetic workloads: this tier's request lengths (else the workload's)."""
    max_num_seqs: int | None = Field(default=None, ge=1)
    """This tier's Deployment's vLLM --max-num-seqs (else the model's)."""
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    """This tier's Deployment's vLLM --max-num-batched-tokens (else the model's)."""

    @model_validator(mode="after")
    def _min_le_max(self) -> TierSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        return self


class ModelSpec(_Spec):
    profile: str = Field(min_length=1)
    """Bundled step-time profile name, e.g. llama-3.1-8b-h100."""
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)


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


class MixPhaseSpec(_Spec):
    start_s: float = Field(ge=0)
    mix: dict[str, float]


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

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadSpec:
        if (self.trace is None) == (self.rate is None):
            raise ValueError("give exactly one of `trace` or `rate`")
        if self.rate is not None and self.duration_s is None:
            raise ValueError("a synthetic workload (`rate`) needs duration_s")
        if self.tier_mix is not None and self.mix_phases is not None:
            raise ValueError("give tier_mix or mix_phases, not both")
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


class ScenarioSpec(_Spec):
    name: str
    description: str = ""
    models: dict[str, ModelSpec] = Field(min_length=1)
    tiers: list[TierSpec] = Field(min_length=1)
    workload: WorkloadSpec
    control_interval_s: float = Field(default=15.0, gt=0)
    metrics_window_s: float = Field(default=60.0, gt=0)
    cold_start_s: float = Field(default=120.0, ge=0)
    warmup_s: float = Field(default=0.0, ge=0)
    """Requests arriving earlier are simulated but not scored (steady-state benchmarks)."""
    budget_gpus: int | None = Field(default=None, ge=1)
    criterion: Criterion = Criterion.TTFT_TPOT
    policies: list[str] = Field(default=["tierscale", "isolated", "hpa", "keda", "static"])
    seeds: int = Field(default=3, ge=1)
    sweep: SweepSpec | None = None
    static: StaticSpec = StaticSpec()
    oracle: OracleSpec = OracleSpec()
    single_pool: bool = False
    """All tiers share the first tier's replicas (one Deployment serving several task
    types, as in SABER); the other tiers' pools stay empty."""

    @model_validator(mode="after")
    def _cross_refs(self) -> ScenarioSpec:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        for t in self.tiers:
            if t.model is None and len(self.models) > 1:
                raise ValueError(f"tier {t.name!r}: model is required when several models exist")
            if t.model is not None and t.model not in self.models:
                raise ValueError(f"tier {t.name!r}: model {t.model!r} is not in models")
        unknown = [p for p in self.policies if p not in POLICY_NAMES]
        if unknown:
            raise ValueError(f"unknown policies {unknown}; expected some of {list(POLICY_NAMES)}")
        mixes = [self.workload.tier_mix] if self.workload.tier_mix else []
        mixes += [p.mix for p in self.workload.mix_phases or []]
        for mix in mixes:
            bad = sorted(set(mix) - set(names))
            if bad:
                raise ValueError(f"workload mix names unknown tiers {bad}; tiers are {names}")
        if self.workload.rate is not None:
            lacking = [t.name for t in self.tiers if t.tokens is None]
            if lacking and self.workload.tokens is None:
                raise ValueError(f"tiers {lacking} have no tokens and workload.tokens is unset")
        horizon = self.workload.duration_s
        if horizon is not None and self.warmup_s >= horizon:
            raise ValueError(
                f"warmup_s ({self.warmup_s:g}) must be shorter than workload.duration_s"
                f" ({horizon:g}): nothing would be scored"
            )
        return self


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"scenario {path}: invalid ({err.error_count()} error(s))"]
    for detail in err.errors():
        loc = ".".join(str(x) for x in detail["loc"]) or "(top level)"
        got = detail.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        lines.append(f"  {loc}: {detail['msg']} (got {shown})")
    return "\n".join(lines)


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
    """The scenario's tiers as domain `Tier`s (model name = the models key)."""
    only_model = next(iter(spec.models))
    out: list[Tier] = []
    for t in spec.tiers:
        model_name = t.model or only_model
        engine = spec.models[model_name]
        out.append(
            Tier(
                name=t.name,
                namespace=t.namespace,
                model=model_name,
                slo=Slo(
                    ttft_s=t.ttft_s,
                    tpot_s=t.tpot_s,
                    percentile=t.percentile,
                    attainment_frac=t.attainment,
                ),
                pool=Pool(
                    deployment=f"vllm-{t.name}",
                    min_replicas=t.min_replicas,
                    max_replicas=t.max_replicas,
                    gpus_per_replica=t.gpus_per_replica,
                    max_num_seqs=t.max_num_seqs or engine.max_num_seqs,
                    max_num_batched_tokens=t.max_num_batched_tokens
                    or engine.max_num_batched_tokens,
                ),
                priority=t.priority,
                borrow=t.borrow,
                lend=t.lend,
                scaling=Scaling(
                    cold_start_s=spec.cold_start_s if t.cold_start_s is None else t.cold_start_s,
                    scale_down_stabilization_s=t.scale_down_stabilization_s,
                    max_scale_up_replicas=t.max_scale_up_replicas,
                    max_scale_down_replicas=t.max_scale_down_replicas,
                ),
                routing_value=t.name,
            )
        )
    return out


def budget_of(spec: ScenarioSpec) -> GpuBudget | None:
    return None if spec.budget_gpus is None else GpuBudget(total_gpus=spec.budget_gpus)
