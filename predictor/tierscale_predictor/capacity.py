"""Capacity of one replica for an SLO, linear in request rates (the planner's contract).

The joint planner is a MILP, so it needs "does this replica still meet the SLO" as a
linear constraint: sum_j rate_j * work_s_per_request(shape_j) <= max_busy_frac(slo, mix).
That holds because the latency model's load enters only through the busy fraction
u = sum_j rate_j * w_j (step time s = c0 / (1 - u), with the decode cost bounded by the
line above its knee), and every predicted latency is non-decreasing in u. So
`max_busy_frac` is the largest u whose predicted percentile TTFT and TPOT meet the SLO,
found by bisection on a monotone predicate.
"""

from __future__ import annotations

from functools import lru_cache

from tierscale_predictor import latency
from tierscale_predictor.latency import LatencyModel, SloTarget, WorkloadShape

_BISECTION_STEPS = 18
"""u is resolved to 2**-18 (4e-6): far below any rate the planner could act on."""


def work_s_per_request(model: LatencyModel, shape: WorkloadShape) -> float:
    """Seconds of replica step time one request of this shape costs (prefill + its decodes)."""
    return latency.work_s_of_shape(model, shape)


def _meets(model: LatencyModel, u: float, slo: SloTarget, shape: WorkloadShape) -> bool:
    return latency.meets_slo(model, u, slo, shape)


@lru_cache(maxsize=65536)
def max_busy_frac(model: LatencyModel, slo: SloTarget, shape: WorkloadShape) -> float:
    """Highest busy fraction in [0, 1) at which one replica meets `slo` (0 if none does)."""
    if not _meets(model, 0.0, slo, shape):
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if _meets(model, mid, slo, shape):
            lo = mid
        else:
            hi = mid
    return lo


def max_rate_rps(model: LatencyModel, slo: SloTarget, shape: WorkloadShape) -> float:
    """Highest Poisson request rate one replica sustains within `slo` for this shape."""
    return max_busy_frac(model, slo, shape) / work_s_per_request(model, shape)
