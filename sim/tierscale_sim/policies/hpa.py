"""`hpa` and `keda`: Kubernetes HPA's replica rule, fed KV-cache usage or queue length.

Implements the documented HPA algorithm (kubernetes/pkg/controller/podautoscaler) one
Deployment at a time: desired = ceil(current * metric / target) outside a 10% tolerance,
not-yet-ready pods counted as 0% usage when scaling up, default scale-up limit
max(100%, 4 pods) per sync, and scale-down only to the highest recommendation of the last
300 s (the stabilisation window). KEDA's queue scaler is the same HPA with an
AverageValue target on the pool's total waiting requests (5 per replica) and a 300 s
cooldown, which is why both share this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.tiers import Tier
from tierscale_sim.commands import FleetCommand


@dataclass(frozen=True, slots=True)
class HpaRule:
    """Settings of one HPA (defaults are Kubernetes' own)."""

    target: float
    tolerance: float = 0.1
    scale_down_stabilization_s: float = 300.0
    scale_up_percent: float = 100.0
    scale_up_pods: int = 4


def hpa_recommendation(current: int, ready: int, metric_avg: float | None, rule: HpaRule) -> int:
    """HPA's raw recommendation for a per-pod average metric (e.g. KV usage 0..1).

    `metric_avg` is the mean over Ready pods; pods still starting are assumed at 0 when
    the ratio says "scale up", exactly to avoid the HPA over-reacting to cold starts.
    """
    if metric_avg is None or ready == 0 or current == 0:
        return current
    ratio = metric_avg / rule.target
    if abs(ratio - 1.0) <= rule.tolerance:
        return current
    if ratio > 1.0 and current > ready:
        ratio = metric_avg * ready / (rule.target * current)
        if ratio <= 1.0 + rule.tolerance:
            return current
        return math.ceil(ratio * current)
    return math.ceil(ratio * ready)


def total_value_recommendation(current: int, total: float | None, rule: HpaRule) -> int:
    """HPA with an external metric and an AverageValue target (what KEDA creates)."""
    if total is None:
        return current
    if current == 0:
        return math.ceil(total / rule.target)
    ratio = total / (rule.target * current)
    if abs(ratio - 1.0) <= rule.tolerance:
        return current
    return math.ceil(total / rule.target)


def stabilize(
    history: list[tuple[float, int]],
    now_s: float,
    raw: int,
    current: int,
    rule: HpaRule,
    min_replicas: int,
    max_replicas: int,
) -> int:
    """Apply HPA's scale-up rate limit and scale-down stabilisation window; clamp."""
    history.append((now_s, raw))
    while history and history[0][0] < now_s - rule.scale_down_stabilization_s:
        history.pop(0)
    desired = raw
    if raw < current:
        desired = min(current, max(r for _, r in history))
    up_limit = max(
        math.ceil(current * (1 + rule.scale_up_percent / 100.0)), current + rule.scale_up_pods
    )
    desired = min(desired, up_limit)
    return max(min_replicas, min(max_replicas, desired))


DEFAULT_HPA_TARGET = 0.7
"""Mean KV-cache usage per replica the `hpa` baseline aims at."""
DEFAULT_KEDA_TARGET = 5.0
"""Waiting requests per replica the `keda` baseline aims at."""


class HpaPolicy:
    """One HPA per tier pool on mean KV-cache usage (target 0.7, or one target per tier:
    what `hpa-tuned` searches with hindsight)."""

    instant_scaling = False

    def __init__(
        self,
        tiers: Sequence[Tier],
        rule: HpaRule | None = None,
        name: str = "hpa",
        rules_by_tier: Mapping[str, HpaRule] | None = None,
    ) -> None:
        self._tiers = tuple(tiers)
        default = rule or HpaRule(target=self.default_target)
        self._rules = {t.key: (rules_by_tier or {}).get(t.key, default) for t in tiers}
        self._history: dict[str, list[tuple[float, int]]] = {t.key: [] for t in tiers}
        self._name = name

    default_target = DEFAULT_HPA_TARGET

    @property
    def name(self) -> str:
        return self._name

    def _raw(self, obs: TierObservation, current: int, rule: HpaRule) -> int:
        return hpa_recommendation(current, obs.ready_replicas or 0, obs.kv_usage_frac, rule)

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        desired: dict[str, int] = {}
        for tier in self._tiers:
            obs = observations.get(tier.key)
            if obs is None:
                continue
            current = obs.current_replicas or 0
            rule = self._rules[tier.key]
            raw = max(self._raw(obs, current, rule), 0)
            desired[tier.key] = stabilize(
                self._history[tier.key],
                now_s,
                raw,
                current,
                rule,
                tier.pool.min_replicas,
                tier.pool.max_replicas,
            )
        return FleetCommand(desired_replicas_by_pool=desired)


class KedaPolicy(HpaPolicy):
    """KEDA queue scaler: total waiting requests of the pool, target 5 per replica (or
    one target per tier)."""

    default_target = DEFAULT_KEDA_TARGET

    def __init__(
        self,
        tiers: Sequence[Tier],
        rule: HpaRule | None = None,
        name: str = "keda",
        rules_by_tier: Mapping[str, HpaRule] | None = None,
    ) -> None:
        super().__init__(tiers, rule, name=name, rules_by_tier=rules_by_tier)

    def _raw(self, obs: TierObservation, current: int, rule: HpaRule) -> int:
        return total_value_recommendation(current, obs.waiting_requests, rule)
