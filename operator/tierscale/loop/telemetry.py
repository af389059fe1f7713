"""Names of tierscale's own metrics: the one place they are written.

The operator exports them on `/metrics` (prometheus-client), the Grafana dashboards are
generated from these constants, and `translate.actions` fills their values from a plan,
so a panel can never query a name the operator does not export. Labels: `namespace`,
`tier`, `model` on every per-tier series; `pool` (`namespace/deployment`) where a pool is
meant.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "tierscale_"

DESIRED_REPLICAS: Final = "tierscale_tier_desired_replicas"
READY_REPLICAS: Final = "tierscale_tier_ready_replicas"
FORECAST_RATE: Final = "tierscale_tier_forecast_rate_rps"
OBSERVED_RATE: Final = "tierscale_tier_observed_rate_rps"
CAPACITY_PER_REPLICA: Final = "tierscale_tier_capacity_per_replica_rps"
PREDICTED_TTFT: Final = "tierscale_tier_predicted_ttft_seconds"
PREDICTED_TPOT: Final = "tierscale_tier_predicted_tpot_seconds"
OBSERVED_TTFT: Final = "tierscale_tier_observed_ttft_seconds"
OBSERVED_TPOT: Final = "tierscale_tier_observed_tpot_seconds"
TARGET_TTFT: Final = "tierscale_tier_target_ttft_seconds"
TARGET_TPOT: Final = "tierscale_tier_target_tpot_seconds"
ATTAINMENT: Final = "tierscale_tier_attainment_ratio"
ATTAINMENT_TARGET: Final = "tierscale_tier_attainment_target_ratio"
SPILL_IN: Final = "tierscale_tier_spill_in_rps"
SPILL_OUT: Final = "tierscale_tier_spill_out_rps"
UNSERVED: Final = "tierscale_tier_unserved_rps"
GPUS_OWN: Final = "tierscale_tier_gpus_own"
"""GPUs of the tier's own pool that serve the tier's own traffic (by planned traffic share)."""
GPUS_BORROWED: Final = "tierscale_tier_gpus_borrowed"
"""GPUs of tighter tiers' pools that serve this tier's spilled traffic (by traffic share)."""
HOLD: Final = "tierscale_tier_hold"
"""1 while the tier is held (stale or missing metrics, conflict), else 0."""
REASON_INFO: Final = "tierscale_tier_decision_reason_info"
"""1 for the reason of the tier's current decision (label `reason`)."""

# Counters and histograms the operator keeps itself (not part of a plan's values).
DECISIONS_TOTAL: Final = "tierscale_decisions_total"
GPU_SECONDS_TOTAL: Final = "tierscale_tier_gpu_seconds_total"
"""GPU-seconds attributed to a tier (label `source`: own or borrowed)."""
PLAN_DURATION: Final = "tierscale_plan_duration_seconds"
ADAPTER_ERRORS_TOTAL: Final = "tierscale_adapter_errors_total"
CONFLICTS: Final = "tierscale_pool_conflict"
BUDGET_GPUS: Final = "tierscale_gpu_budget_gpus"
PLANNED_GPUS: Final = "tierscale_planned_gpus"
