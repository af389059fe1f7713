"""Every setting of the operator, in one place: the only code that reads the environment.

Each field documents its unit, its default and why; `tierscale run --help` prints them
and the Helm chart's values map onto the `TIERSCALE_*` variables. Durations are seconds
(`_s`), rates requests per second (`_rps`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tierscale.domain.tiers import GpuBudget
from tierscale.policy import planner

_PLANNER_DEFAULTS = planner.PlannerConfig()


class Settings(BaseSettings):
    """Operator settings; environment variables `TIERSCALE_<FIELD>` (upper case)."""

    model_config = SettingsConfigDict(
        env_prefix="TIERSCALE_",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    # --- the loop --------------------------------------------------------------------
    control_interval_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 15.0
    """Seconds between decisions. 15 s: HPA's sync period; finer than a cold start, coarser
    than Prometheus' scrape (so each decision sees new samples)."""
    metrics_window_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0
    """Window of every rate and histogram quantile (PromQL `[w]`), seconds. 60 s: four 15 s
    scrapes, so `rate()` is stable; the testbed (1 s scrapes) uses 10 s."""
    rate_history_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 900.0
    """How much per-tier rate history the forecast sees (range query), seconds."""
    stale_after_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 90.0
    """A sample older than this (seconds) is missing: the tier is held, never scaled on it."""
    dry_run: bool = False
    """Advisory mode: plan, write status, Events and metrics; never write a Deployment or
    a route."""
    namespaces: tuple[str, ...] = ()
    """Namespaces whose SLOTiers are managed; empty: all the operator may watch."""

    # --- Prometheus ------------------------------------------------------------------
    prometheus_url: str = "http://prometheus-operated.monitoring:9090"
    """Base URL of the Prometheus that scrapes the vLLM pods and Envoy."""
    prometheus_timeout_s: Annotated[float, Field(gt=0.0, le=60.0)] = 5.0
    """Per-query timeout, seconds. A timed-out query is a missing value (hold)."""
    use_recording_rules: bool = False
    """Query the recording rules the chart installs instead of the raw expressions (same
    results, cheaper queries); off: works against any Prometheus."""

    # --- Envoy -----------------------------------------------------------------------
    envoy_configmap: str = "tierscale-envoy"
    """`namespace/name` or `name` (operator's namespace) of the routing ConfigMap Envoy
    mounts."""
    envoy_settle_s: Annotated[float, Field(ge=0.0, le=600.0)] = 90.0
    """Seconds between publishing new clusters and routes that use them (kubelet's
    ConfigMap propagation; Envoy rejects routes to a cluster it has not loaded)."""
    routing_header: str = "x-slo-tier"
    """Default request header carrying the tier (an SLOTier may set its own)."""

    # --- GPUs ------------------------------------------------------------------------
    gpu_budget: str = "auto"
    """GPUs the planner may use: `auto` (allocatable `nvidia.com/gpu` of Ready nodes), a
    number (all accelerators), or `label=N,label=N` per `nvidia.com/gpu.product`."""

    # --- the planner (defaults are `planner.PlannerConfig`'s) ------------------------
    calibrate_tpot: bool = _PLANNER_DEFAULTS.calibrate_tpot
    """Learn a TPOT multiplier per pool from its observed percentile (docs/planner.md)."""
    calibrate_ttft: bool = _PLANNER_DEFAULTS.calibrate_ttft
    """Learn a TTFT multiplier per pool too."""
    latency_profile: str = "llama-3.1-8b-h100"
    """Bundled step-time profile for served models without a model file."""
    latency_model_files: tuple[str, ...] = ()
    """`served-model=path/to/model.json` pairs from `tierscale fit` / `calibrate`."""

    # --- process ---------------------------------------------------------------------
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of `/metrics`, `/healthz` and `/readyz`."""
    log_format: Literal["json", "text"] = "json"
    """JSON lines (one per decision, with its record id) or text."""
    record_dir: str | None = None
    """Write every decision record (JSON) here for `tierscale replay`; None: not kept."""

    @field_validator("gpu_budget")
    @classmethod
    def _budget_syntax(cls, value: str) -> str:
        parse_gpu_budget(value, allocatable={})
        return value

    def planner_config(self) -> planner.PlannerConfig:
        return planner.PlannerConfig(
            stale_after_s=self.stale_after_s,
            calibrate_tpot=self.calibrate_tpot,
            calibrate_ttft=self.calibrate_ttft,
        )


def parse_gpu_budget(text: str, allocatable: dict[str, int]) -> GpuBudget | None:
    """`auto` -> the sum of `allocatable` (None if no GPU nodes are known yet), `N`, or
    `label=N,...` (summed: the planner's budget is per model group over all labels)."""
    text = text.strip()
    if text == "auto":
        total = sum(allocatable.values())
        return GpuBudget(total_gpus=total) if allocatable else None
    if text.isdigit():
        return GpuBudget(total_gpus=int(text))
    total = 0
    for part in text.split(","):
        label, sep, number = part.partition("=")
        if not sep or not label.strip() or not number.strip().isdigit():
            raise ValueError(
                f"gpu_budget {text!r}: expected `auto`, a number, or `label=N,label=N`"
            )
        total += int(number)
    return GpuBudget(total_gpus=total)
