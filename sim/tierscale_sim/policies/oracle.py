"""`oracle`: the reference no deployable policy can be expected to beat.

With perfect knowledge of the future and instant scaling, each tier gets, for every
control interval, ceil(peak actual arrival rate over the interval's 5 s sub-windows /
engine-validated capacity of one replica) replicas, Ready at once (no cold start), on
its own pool; under a GPU budget the GPUs are shared by that need (`apportion`). It is
simulated like every other policy, so its attainment is measured, not assumed.

`fluid_gpu_hours` is the looser analytic bound: the same demand served by fractional
replicas, i.e. the integral of rate / capacity. No policy that serves every tier at its
own SLO on replicas of this capacity can use fewer GPU-hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tierscale.domain.observations import Observations
from tierscale.domain.tiers import Tier
from tierscale_sim import apportion
from tierscale_sim.commands import FleetCommand
from tierscale_sim.workloads import Workload


class OraclePolicy:
    name = "oracle"
    instant_scaling = True

    def __init__(
        self,
        tiers: Sequence[Tier],
        workload: Workload,
        capacity_rps_by_tier: Mapping[str, float],
        interval_s: float,
        budget_gpus: int | None = None,
        burst_window_s: float = 5.0,
    ) -> None:
        self._burst_window_s = min(burst_window_s, interval_s)
        self._tiers = tuple(tiers)
        self._w = workload
        self._cap = dict(capacity_rps_by_tier)
        self._interval_s = interval_s
        self._budget_gpus = budget_gpus

    def replicas_for(self, start_s: float) -> dict[str, int]:
        rates = _peak_rates(self._w, start_s, self._interval_s, self._burst_window_s)
        out: dict[str, int] = {}
        need_by_tier: dict[str, float] = {}
        for t in self._tiers:
            need_by_tier[t.key] = rates.get(t.key, 0.0) / max(self._cap[t.key], 1e-9)
            need = math.ceil(need_by_tier[t.key] - 1e-9)
            out[t.key] = max(t.pool.min_replicas, min(t.pool.max_replicas, need))
        floors = {t.key: t.pool.min_replicas for t in self._tiers}
        return apportion.share_budget(out, need_by_tier, floors, self._budget_gpus)

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        return FleetCommand(desired_replicas_by_pool=self.replicas_for(now_s))


def _peak_rates(
    workload: Workload, start_s: float, interval_s: float, window_s: float
) -> dict[str, float]:
    """Highest per-tier rate over the sub-windows of the interval (bursts are known too)."""
    peak: dict[str, float] = {}
    t = start_s
    while t < start_s + interval_s - 1e-9:
        for key, rate in workload.rate_by_tier_rps(t, t + window_s).items():
            peak[key] = max(peak.get(key, 0.0), rate)
        t += window_s
    return peak


def fluid_gpu_hours(
    tiers: Sequence[Tier],
    workload: Workload,
    capacity_rps_by_tier: Mapping[str, float],
    interval_s: float,
) -> float:
    total = 0.0
    start = 0.0
    while start < workload.duration_s:
        rates = workload.rate_by_tier_rps(start, start + interval_s)
        for t in tiers:
            replicas = rates[t.key] / max(capacity_rps_by_tier[t.key], 1e-9)
            total += replicas * t.pool.gpus_per_replica * interval_s
        start += interval_s
    return total / 3600.0
