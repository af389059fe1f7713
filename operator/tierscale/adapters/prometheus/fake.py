"""`FakeMetrics`: a `MetricsPort` that answers from given `MetricInputs`, with faults.

For the operator's unit tests. What it returns follows the real adapter's rules
(`assemble`): a stale sample withholds its fields, a failed or NaN query makes its field
None and counts an error, a missing series makes the tier or pool absent. Faults are
injected per field and tier/pool key, optionally only for a span of `now_s`.

    metrics = FakeMetrics(inputs)                            # the same inputs every read
    metrics = FakeMetrics([(0.0, calm), (600.0, surge)])     # scripted: latest step <= now_s
    metrics.inject(FieldFails("ttft", keys={"ns/gold-pool"}), until_s=120.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tierscale.adapters.prometheus import assemble
from tierscale.domain.metrics import MetricInputs, PoolSignals, TierTraffic
from tierscale.domain.tiers import Tier
from tierscale.loop.ports import PortError

Script = (
    MetricInputs
    | Sequence[tuple[float, MetricInputs]]
    | Callable[[Sequence[Tier], float], MetricInputs]
)

_TIER_FIELDS = {"rate_rps", "rate_history_rps"}
_POOL_FIELDS = {f.name for f in fields(PoolSignals)} - {"sampled_at_s", "window_s"}


@dataclass(frozen=True, slots=True)
class FieldFails:
    """The query behind `field` fails (error, timeout, NaN or empty): None, one error counted.

    `field` is a `TierTraffic` field (`rate_rps`, `rate_history_rps`) or a `PoolSignals`
    one (`ttft`, `running_requests`, ...); `keys` limits it to some tiers or pools."""

    field: str
    keys: Collection[str] | None = None
    reason: str = "query failed"

    def __post_init__(self) -> None:
        if self.field not in _TIER_FIELDS | _POOL_FIELDS:
            known = sorted(_TIER_FIELDS | _POOL_FIELDS)
            raise ValueError(f"FieldFails: unknown field {self.field!r}; one of {known}")


@dataclass(frozen=True, slots=True)
class Stale:
    """The newest sample of these tiers/pools (None: all) is `age_s` old at read time."""

    age_s: float
    keys: Collection[str] | None = None


@dataclass(frozen=True, slots=True)
class Missing:
    """No series at all for these tiers/pools (None: all): absent from the inputs."""

    keys: Collection[str] | None = None


@dataclass(frozen=True, slots=True)
class Unreachable:
    """Prometheus cannot be reached: every query fails, nothing is measured."""


@dataclass(frozen=True, slots=True)
class Raises:
    """`read` raises this (what the tick must survive; the real adapter only raises
    `PortError` for a configuration that cannot work)."""

    error: Exception = field(default_factory=lambda: PortError("fake: metrics port failure"))


Fault = FieldFails | Stale | Missing | Unreachable | Raises


@dataclass(frozen=True, slots=True)
class _Scheduled:
    fault: Fault
    from_s: float
    until_s: float


def _hits(keys: Collection[str] | None, key: str) -> bool:
    return keys is None or key in keys


class FakeMetrics:
    """In-memory `MetricsPort`; see module doc."""

    QUERIES_PER_READ = 14
    """Errors an unreachable Prometheus costs the real adapter per read (13 + 1 range)."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        stale_after_s: float = 90.0,
        inflight_by_pool: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self._script: Script = MetricInputs() if script is None else script
        self.stale_after_s = stale_after_s
        self.inflight_by_pool: dict[str, Mapping[str, float]] = dict(inflight_by_pool or {})
        self._faults: list[_Scheduled] = []
        self.reads: list[float] = []
        """`now_s` of every `read`, in order."""
        self.errors_total = 0

    def inject(self, fault: Fault, *, from_s: float = -math.inf, until_s: float = math.inf) -> None:
        """Apply `fault` to reads with `from_s <= now_s < until_s`."""
        self._faults.append(_Scheduled(fault, from_s, until_s))

    def clear_faults(self) -> None:
        self._faults.clear()

    def read(self, tiers: Sequence[Tier], now_s: float) -> MetricInputs:
        self.reads.append(now_s)
        active = [s.fault for s in self._faults if s.from_s <= now_s < s.until_s]
        for fault in active:
            if isinstance(fault, Raises):
                raise fault.error
        if any(isinstance(fault, Unreachable) for fault in active):
            self.errors_total += self.QUERIES_PER_READ
            return MetricInputs()
        inputs = self._inputs(tiers, now_s)
        for fault in active:
            inputs = self._apply(fault, inputs, now_s)
        inputs = assemble.withhold_stale(inputs, now_s, self.stale_after_s)
        return replace(inputs, replicas_by_pool={})

    def inflight_by_pod(self, pool_key: str, now_s: float) -> Mapping[str, float]:
        active = [s.fault for s in self._faults if s.from_s <= now_s < s.until_s]
        if any(isinstance(f, Unreachable | Raises) for f in active):
            return {}
        if any(isinstance(f, Missing) and _hits(f.keys, pool_key) for f in active):
            return {}
        return dict(self.inflight_by_pool.get(pool_key, {}))

    def _inputs(self, tiers: Sequence[Tier], now_s: float) -> MetricInputs:
        script = self._script
        if isinstance(script, MetricInputs):
            return script
        if callable(script):
            return script(tiers, now_s)
        chosen = MetricInputs()
        for at_s, inputs in sorted(script, key=lambda step: step[0]):
            if at_s <= now_s:
                chosen = inputs
        return chosen

    def _apply(self, fault: Fault, inputs: MetricInputs, now_s: float) -> MetricInputs:
        traffic = dict(inputs.traffic_by_tier)
        signals = dict(inputs.signals_by_pool)
        if isinstance(fault, Missing):
            traffic = {k: t for k, t in traffic.items() if not _hits(fault.keys, k)}
            signals = {k: s for k, s in signals.items() if not _hits(fault.keys, k)}
        elif isinstance(fault, Stale):
            at_s = now_s - fault.age_s
            traffic = {
                k: replace(t, sampled_at_s=at_s) if _hits(fault.keys, k) else t
                for k, t in traffic.items()
            }
            signals = {
                k: replace(s, sampled_at_s=at_s) if _hits(fault.keys, k) else s
                for k, s in signals.items()
            }
        elif isinstance(fault, FieldFails):
            self.errors_total += 1
            traffic = {k: _fail_tier(t, fault) if _hits(fault.keys, k) else t
                       for k, t in traffic.items()}  # fmt: skip
            signals = {k: _fail_pool(s, fault) if _hits(fault.keys, k) else s
                       for k, s in signals.items()}  # fmt: skip
        return replace(inputs, traffic_by_tier=traffic, signals_by_pool=signals)


def _fail_tier(traffic: TierTraffic, fault: FieldFails) -> TierTraffic:
    if fault.field == "rate_rps":
        return replace(traffic, rate_rps=None)
    if fault.field == "rate_history_rps":
        return replace(traffic, rate_history_rps=())
    return traffic


def _fail_pool(signals: PoolSignals, fault: FieldFails) -> PoolSignals:
    if fault.field in _POOL_FIELDS:
        cleared: dict[str, Any] = {fault.field: None}
        return replace(signals, **cleared)
    return signals
