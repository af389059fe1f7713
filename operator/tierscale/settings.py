"""Every setting of the operator, in one place: the only code that reads the environment.

Each field documents its unit, its default and why; `tierscale run --help` prints them
and the Helm chart's values map onto the `TIERSCALE_*` variables. Durations are seconds
(`_s`), rates requests per second (`_rps`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    """Namespaces whose SLOTiers are managed, comma-separated; empty: every namespace (the
    operator then needs cluster-wide read access to SLOTiers and Deployments)."""
    operator_namespace: str = "tierscale-system"
    """Namespace of the operator's own objects: one planner-state ConfigMap per model
    (a restart resumes stabilisation windows and learned corrections from it)."""

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
    envoy_xds_dir: str = "/etc/envoy/xds"
    """Directory in the Envoy pod holding the `lds/`, `cds/` and `rds/` mounts of the
    routing ConfigMap (the paths written into the config Envoy reads)."""
    envoy_caps_in_runtime: bool = True
    """Admission caps as Envoy runtime overrides (the ConfigMap's `rtds.yaml`, mounted at
    `<envoy_xds_dir>/rtds`, read by an RTDS layer in Envoy's bootstrap): a cap change then
    rebuilds no cluster. Off: caps in the clusters, and every change re-creates the
    cluster, resetting the streams in flight on it."""
    envoy_pool_endpoints: str = "dns:{deployment}.{namespace}.svc.cluster.local:8000"
    """Where Envoy finds a pool's pods: `dns:<host template>:<port>` (a headless Service
    per Deployment: DNS lists only Ready pods) or `eds:<directory>` (EDS files named
    `<namespace>_<deployment>.yaml`, kept current by something else)."""
    envoy_listener_address: str = "0.0.0.0"
    """Address Envoy's listener binds in its pod."""
    envoy_listener_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Port of Envoy's listener (where clients send requests)."""
    envoy_idle_timeout_s: Annotated[float, Field(gt=0.0, le=86400.0)] = 300.0
    """A request with no byte in either direction for this long is ended (seconds);
    streamed generations have no total timeout."""
    envoy_binary: str = "envoy"
    """The `envoy` binary that validates every config before it is published
    (`envoy --mode validate`)."""

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
    latency_model_files: Annotated[tuple[str, ...], NoDecode] = ()
    """`served-model=path/to/model.json` pairs from `tierscale fit` / `calibrate`,
    comma-separated."""

    # --- process ---------------------------------------------------------------------
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of `/metrics`, `/healthz` and `/readyz` (0: any free port, logged at start)."""
    kubernetes_timeout_s: Annotated[float, Field(gt=0.0, le=300.0)] = 10.0
    """Per-request timeout of the operator's own Kubernetes calls, seconds."""
    status_refresh_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 60.0
    """An SLOTier's status is written when its decision's reason, its replicas or a
    condition changes, else at most this often (seconds): the observed numbers in it lag
    by up to this much, and 500 tiers cost ~8, not ~33, status writes per second."""
    tick_workers: Annotated[int, Field(ge=1, le=64)] = 4
    """Model groups decided at the same time (threads; a tick mostly waits on the network)."""
    shutdown_grace_s: Annotated[float, Field(ge=0.0, le=600.0)] = 30.0
    """On SIGTERM, or when a peer takes over, a running tick gets this long to finish
    (seconds); no new tick starts."""

    # --- peering (two replicas: exactly one acts) -----------------------------------
    peering_name: str = "tierscale"
    """kopf peering object shared by the replicas of one installation."""
    peering_priority: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    """This replica's priority; the highest acts, the others wait. None: random at start
    (kopf freezes every replica when two have the same priority)."""
    peering_lifetime_s: Annotated[int, Field(ge=2, le=3600)] = 60
    """How long a replica that stopped renewing counts as alive (seconds): the standby
    takes over at most this long after the active replica died without a goodbye."""
    standalone: bool = False
    """Run without peering (one replica only; for development)."""
    log_format: Literal["json", "text"] = "json"
    """JSON lines (one per decision, with its record id) or text."""
    record_dir: str | None = None
    """Write every decision record (JSON) here for `tierscale replay`; None: not kept."""

    @field_validator("namespaces", "latency_model_files", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

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
