"""What each Grafana dashboard shows, as plain data: titles, panels, PromQL.

Every query is built from the metric-name constants the operator exports
(`tierscale.loop.telemetry`) and the reason codes of `tierscale.domain.reasons`, so a
panel cannot name a series the operator does not serve. `grafana.py` turns these specs
into dashboard JSON with grafana-foundation-sdk; the chart ships that JSON and the e2e
test runs every query against the testbed's Prometheus after a closed-loop run.

Template variables: `namespace`, `model`, `tier` (multi-select, "All" is `.*`) and the
Prometheus data source; `$__rate_interval` is Grafana's own. `SUBSTITUTIONS` is what a
caller outside Grafana (the test, the preview) puts in their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from tierscale.domain.reasons import Reason
from tierscale.loop import telemetry as t

TIER_SELECTOR: Final = 'namespace=~"$namespace", model=~"$model", tier=~"$tier"'
MODEL_SELECTOR: Final = 'model=~"$model"'
RATE: Final = "$__rate_interval"

SUBSTITUTIONS: Final = {
    "$namespace": ".*",
    "$model": ".*",
    "$tier": ".*",
}
"""Variable -> value for running a panel's query outside Grafana ("All" for each);
`$__rate_interval` is replaced by the caller with a window of its own."""

PanelKind = Literal["timeseries", "stat", "table", "bargauge"]


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str
    """Grafana legend format, e.g. `{{tier}} desired`."""
    instant: bool = False


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    """Grafana unit id: `s`, `reqps`, `percentunit`, `short`, `h`."""
    kind: PanelKind = "timeseries"
    width: int = 12
    height: int = 8
    stacked: bool = False
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    """Stable: links and the sidecar's provisioning key on it."""
    title: str
    description: str
    file_name: str
    panels: tuple[Panel, ...]


def _by_tier(metric: str, extra: str = "") -> str:
    selector = TIER_SELECTOR + (f", {extra}" if extra else "")
    return f"sum by (namespace, tier) ({metric}{{{selector}}})"


def _by_model(metric: str) -> str:
    return f"sum by (model) ({metric}{{{MODEL_SELECTOR}}})"


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{RATE}])))"


def _reason(reason: Reason) -> str:
    return f'{t.REASON_INFO}{{{TIER_SELECTOR}, reason="{reason.value}"}}'


FLEET = Dashboard(
    uid="tierscale-fleet",
    title="tierscale / fleet overview",
    description="GPUs by tier (own pool vs borrowed from tighter tiers), budget use, "
    "demand and what the plan cannot serve.",
    file_name="tierscale-fleet.json",
    panels=(
        Panel(
            "GPUs planned",
            "GPUs the last plan of each model uses.",
            (Query(f"sum({t.PLANNED_GPUS}{{{MODEL_SELECTOR}}})", "planned", instant=True),),
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "GPU budget use",
            "Planned GPUs over the GPU budget (auto: allocatable nvidia.com/gpu of Ready "
            "nodes). No value: no budget (unlimited).",
            (
                Query(
                    f"sum({t.PLANNED_GPUS}{{{MODEL_SELECTOR}}}) / "
                    f"sum({t.BUDGET_GPUS}{{{MODEL_SELECTOR}}})",
                    "budget use",
                    instant=True,
                ),
            ),
            unit="percentunit",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Unserved demand",
            "Requests/s the plan cannot serve within the SLO (budget or max replicas), all tiers.",
            (Query(f"sum({t.UNSERVED}{{{TIER_SELECTOR}}})", "unserved", instant=True),),
            unit="reqps",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Tiers held",
            "Tiers whose last decision was a hold (stale or missing metrics, another "
            "writer): tierscale is not scaling them.",
            (Query(f"sum({t.HOLD}{{{TIER_SELECTOR}}})", "held", instant=True),),
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "GPUs by tier: own pool and borrowed",
            "GPUs serving each tier: its own pool's share for its own traffic, and the "
            "share of tighter tiers' pools serving its spilled requests (by traffic).",
            (
                Query(_by_tier(t.GPUS_OWN), "{{tier}} own"),
                Query(_by_tier(t.GPUS_BORROWED), "{{tier}} borrowed"),
            ),
            stacked=True,
            min_value=0.0,
        ),
        Panel(
            "GPU budget and plan",
            "GPUs the plans use against the budget, per model.",
            (
                Query(_by_model(t.PLANNED_GPUS), "{{model}} planned"),
                Query(_by_model(t.BUDGET_GPUS), "{{model}} budget"),
            ),
            min_value=0.0,
        ),
        Panel(
            "Demand by tier: observed and forecast",
            "Requests/s arriving per tier (Envoy's route counter) and the demand the plan "
            "provisions for (the forecast at a new replica's ready time).",
            (
                Query(_by_tier(t.OBSERVED_RATE), "{{tier}} observed"),
                Query(_by_tier(t.FORECAST_RATE), "{{tier}} forecast"),
            ),
            unit="reqps",
            min_value=0.0,
        ),
        Panel(
            "Unserved demand by tier",
            "Requests/s of each tier the plan cannot serve within its SLO.",
            (Query(_by_tier(t.UNSERVED), "{{tier}}"),),
            unit="reqps",
            min_value=0.0,
        ),
        Panel(
            "GPU-hours by tier and source (dashboard range)",
            "GPU-hours attributed to each tier over the selected range: own pool and "
            "borrowed (tierscale_tier_gpu_seconds_total / 3600).",
            (
                Query(
                    f"sum by (tier, source) (increase({t.GPU_SECONDS_TOTAL}"
                    f"{{{TIER_SELECTOR}}}[$__range])) / 3600",
                    "{{tier}} {{source}}",
                    instant=True,
                ),
            ),
            unit="h",
            kind="bargauge",
        ),
        Panel(
            "Spill between tiers",
            "Requests/s each tier sends to tighter tiers' pools (out) and receives from "
            "looser tiers (in).",
            (
                Query(_by_tier(t.SPILL_OUT), "{{tier}} out"),
                Query(_by_tier(t.SPILL_IN), "{{tier}} in"),
            ),
            unit="reqps",
            min_value=0.0,
        ),
    ),
)

TIER_SLO = Dashboard(
    uid="tierscale-tier-slo",
    title="tierscale / tier SLO",
    description="Per tier: latency observed vs target vs predicted, attainment and error "
    "budget, replicas desired and ready, and why each decision was taken.",
    file_name="tierscale-tier-slo.json",
    panels=(
        Panel(
            "TTFT at the SLO percentile",
            "Observed (the pool's vLLM histogram), target (the SLOTier) and predicted at the "
            "planned load (the planner's model).",
            (
                Query(_by_tier(t.OBSERVED_TTFT), "{{tier}} observed"),
                Query(_by_tier(t.TARGET_TTFT), "{{tier}} target"),
                Query(_by_tier(t.PREDICTED_TTFT), "{{tier}} predicted"),
            ),
            unit="s",
            min_value=0.0,
        ),
        Panel(
            "TPOT at the SLO percentile",
            "Observed, target and predicted time per output token.",
            (
                Query(_by_tier(t.OBSERVED_TPOT), "{{tier}} observed"),
                Query(_by_tier(t.TARGET_TPOT), "{{tier}} target"),
                Query(_by_tier(t.PREDICTED_TPOT), "{{tier}} predicted"),
            ),
            unit="s",
            min_value=0.0,
        ),
        Panel(
            "SLO attainment",
            "Estimated share of the pool's requests meeting both bounds (a lower bound from "
            "vLLM's histograms) against the tier's attainment target.",
            (
                Query(_by_tier(t.ATTAINMENT), "{{tier}} observed"),
                Query(_by_tier(t.ATTAINMENT_TARGET), "{{tier}} target"),
            ),
            unit="percentunit",
            max_value=1.0,
        ),
        Panel(
            "Error budget left (dashboard range)",
            "1 - (1 - mean attainment) / (1 - target) over the selected range: 100 % is "
            "untouched, 0 % spent, below 0 overspent.",
            (
                Query(
                    f"1 - (1 - avg_over_time(({_by_tier(t.ATTAINMENT)})[$__range:])) / "
                    f"(1 - avg_over_time(({_by_tier(t.ATTAINMENT_TARGET)})[$__range:]))",
                    "{{tier}}",
                    instant=True,
                ),
            ),
            unit="percentunit",
            kind="bargauge",
        ),
        Panel(
            "Replicas: desired and ready",
            "What the last decision wants for the tier's own pool and what was Ready when "
            "it was decided.",
            (
                Query(_by_tier(t.DESIRED_REPLICAS), "{{tier}} desired"),
                Query(_by_tier(t.READY_REPLICAS), "{{tier}} ready"),
            ),
            min_value=0.0,
        ),
        Panel(
            "Decisions by reason",
            "Decisions per minute by reason code (docs/planner.md lists them).",
            (
                Query(
                    f"sum by (tier, reason) (rate({t.DECISIONS_TOTAL}{{{TIER_SELECTOR}}}"
                    f"[{RATE}])) * 60",
                    "{{tier}} {{reason}}",
                ),
            ),
            unit="short",
            stacked=True,
            min_value=0.0,
        ),
        Panel(
            "Demand and capacity",
            "Observed demand, the forecast the plan provisions for, and the capacity of the "
            "desired replicas (desired x requests/s one replica serves within the SLO).",
            (
                Query(_by_tier(t.OBSERVED_RATE), "{{tier}} observed"),
                Query(_by_tier(t.FORECAST_RATE), "{{tier}} forecast"),
                Query(
                    f"{_by_tier(t.DESIRED_REPLICAS)} * {_by_tier(t.CAPACITY_PER_REPLICA)}",
                    "{{tier}} capacity",
                ),
            ),
            unit="reqps",
            min_value=0.0,
        ),
        Panel(
            "Last decision",
            "The reason of each tier's current decision (the status's lastDecision).",
            (
                Query(
                    f"max by (namespace, tier, reason) ({t.REASON_INFO}{{{TIER_SELECTOR}}})",
                    "{{tier}} {{reason}}",
                    instant=True,
                ),
            ),
            kind="table",
        ),
    ),
)

PLANNER_HEALTH = Dashboard(
    uid="tierscale-planner",
    title="tierscale / planner health",
    description="How long plans take, which tiers are held or in conflict with another "
    "writer, and adapter errors by port.",
    file_name="tierscale-planner.json",
    panels=(
        Panel(
            "Plan duration",
            "Seconds one planner call takes (one model group), p50 and p99.",
            (
                Query(_quantile(0.5, t.PLAN_DURATION), "p50"),
                Query(_quantile(0.99, t.PLAN_DURATION), "p99"),
            ),
            unit="s",
            min_value=0.0,
        ),
        Panel(
            "Decisions per minute",
            "All tiers' decisions per minute (one per tier per control interval when healthy).",
            (
                Query(
                    f"sum(rate({t.DECISIONS_TOTAL}{{{TIER_SELECTOR}}}[{RATE}])) * 60",
                    "decisions",
                ),
            ),
            min_value=0.0,
        ),
        Panel(
            "Tiers held",
            "1 while a tier is held: stale or missing metrics, or another writer owns its "
            "replicas.",
            (Query(_by_tier(t.HOLD), "{{tier}}"),),
            stacked=True,
            min_value=0.0,
        ),
        Panel(
            "Conflicts with another writer",
            "Tiers whose Deployment another writer scales (an HPA, a KEDA ScaledObject, a "
            "manual scale or a re-applied manifest); the status says how to hand it back.",
            (Query(f"count by (namespace, tier) ({_reason(Reason.CONFLICT)})", "{{tier}}"),),
            min_value=0.0,
        ),
        Panel(
            "Adapter errors",
            "Failures per minute by port (kubernetes, prometheus, envoy, state): a failed "
            "read holds, a failed write is retried by the next tick.",
            (
                Query(
                    f"sum by (port) (rate({t.ADAPTER_ERRORS_TOTAL}[{RATE}])) * 60",
                    "{{port}}",
                ),
            ),
            min_value=0.0,
        ),
        Panel(
            "Capacity per replica",
            "Requests/s one replica of each tier's pool serves within the SLO at the observed "
            "request lengths, as the planner's latency model (with its learned corrections) "
            "predicts it; a drop means longer requests or a corrected model.",
            (Query(_by_tier(t.CAPACITY_PER_REPLICA), "{{tier}}"),),
            unit="reqps",
            min_value=0.0,
        ),
    ),
)

DASHBOARDS: Final = (FLEET, TIER_SLO, PLANNER_HEALTH)
