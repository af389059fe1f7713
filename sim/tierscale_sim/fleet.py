"""Discrete-event fleet simulator: pools of engine replicas, an Envoy-like router, a control loop.

Invariant of the main loop: every event (control tick, replica ready) with a time at or
before the next arrival is processed before that arrival is routed, and a replica is only
advanced (`run_until`) when something touches it: an arrival routed to it, the router
probing it, or a control tick reading its gauges. Untouched replicas cost nothing, which
is what makes an hour of a 20-replica fleet at 100 req/s affordable.

The router mimics Envoy: per-tier weighted clusters (smooth weighted round robin, so the
split is exact rather than noisy), least-request with two random choices inside a pool
(Envoy's `LEAST_REQUEST` default) on outstanding tokens, and an optional circuit breaker
(max in-flight requests per pool). As in Envoy, a request goes to the one pool its weights
pick: an open breaker or a pool without Ready replicas rejects it (503), it never falls
through to another pool. A replica costs GPU time from the moment it is requested until it is gone:
cold start included, and scale-down drains in-flight requests before the GPU is freed.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tierscale.domain import vllm
from tierscale.domain.metrics import (
    Histogram,
    MetricInputs,
    PoolReplicas,
    PoolSignals,
    TierTraffic,
)
from tierscale.domain.observations import Observations
from tierscale.domain.tiers import Tier
from tierscale.loop import naming, observe
from tierscale_sim import explain
from tierscale_sim.commands import FleetCommand, Policy, TierExplanation
from tierscale_sim.replica_port import BackendFactory, Finished, ReplicaBackend
from tierscale_sim.workloads import FloatArray, IntArray, Workload

BoolArray = npt.NDArray[np.bool_]


class ReplicaState(Enum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    GONE = "gone"


@dataclass(slots=True)
class SimReplica:
    replica_id: int
    pool: int
    backend: ReplicaBackend
    requested_at_s: float
    ready_at_s: float
    state: ReplicaState
    inflight: int = 0
    gone_at_s: float | None = None
    drain_started_s: float = 0.0
    last_finish_s: float = 0.0


class RequestRouter(Protocol):
    """Per-request routing that replaces the Envoy-like router (PolyServe, SABER).

    `route` must either submit the request (`fleet.submit`), keep it in its own queue, or
    reject it (`fleet.reject`); `poll` runs every `poll_interval_s` (None: never) and at
    the end of the run with `final=True`, when everything still queued must be placed.
    """

    @property
    def poll_interval_s(self) -> float | None: ...

    def route(self, fleet: Fleet, index: int, t_s: float) -> None: ...

    def pending(self) -> int:
        """Requests still held in the router's own queues."""
        ...

    def poll(self, fleet: Fleet, now_s: float, final: bool = False) -> None: ...


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Fleet-wide settings of one run."""

    control_interval_s: float = 15.0
    metrics_window_s: float = 60.0
    """Window of the rate and latency quantiles given to policies (Prometheus `[1m]`)."""
    scrape_interval_s: float = 15.0
    """Prometheus' scrape interval: a decision sees the world as of the last scrape."""
    rate_history_s: float = 900.0
    """How much per-tick rate history policies see, for forecasting."""
    budget_gpus: int | None = None
    initial_replicas_by_pool: Mapping[str, int] = field(default_factory=dict)
    """pool -> replicas Ready at t=0 (a warm fleet)."""
    single_pool: bool = False
    """Every tier's traffic goes to the first pool, whatever the policy's weights say."""
    track_deadlines: bool = True
    """Judge PolyServe's per-token deadlines (`Outcomes.deadline_met`); off, every request
    counts as on time there, and nothing else changes."""


@dataclass(frozen=True, slots=True)
class TickRecord:
    """What the fleet looked like at one control tick (for plots and scaling counts)."""

    t_s: float
    rate_by_tier_rps: Mapping[str, float]
    desired_by_pool: Mapping[str, int]
    ready_by_pool: Mapping[str, int]
    current_by_pool: Mapping[str, int]
    gpus_in_use: int
    explanation_by_tier: Mapping[str, TierExplanation] = field(default_factory=dict)
    """Why the policy decided what it did (policies with reasons only: `explain`)."""


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per-request results, parallel to the workload arrays; NaN where not served."""

    ttft_s: FloatArray
    tpot_s: FloatArray
    e2e_s: FloatArray
    deadline_met: BoolArray
    rejected: BoolArray
    served_pool: IntArray
    """Index into the tier keys of the pool that served the request, -1 if rejected."""
    preemptions: IntArray


@dataclass(frozen=True, slots=True)
class FleetRun:
    """Everything one simulation produced."""

    workload: Workload
    outcomes: Outcomes
    timeline: tuple[TickRecord, ...]
    gpu_hours: float
    gpu_hours_by_pool: Mapping[str, float]
    scale_ups: int
    scale_downs: int
    replicas_started: int
    max_kv_usage_frac: float
    end_s: float


class Fleet:
    """One run of one policy over one workload."""

    def __init__(
        self,
        tiers: Sequence[Tier],
        workload: Workload,
        policy: Policy,
        backend_factory: BackendFactory,
        config: FleetConfig,
        rng: np.random.Generator,
        router: RequestRouter | None = None,
    ) -> None:
        keys = tuple(t.key for t in tiers)
        if keys != workload.tier_keys:
            raise ValueError(f"workload tiers {workload.tier_keys} differ from fleet tiers {keys}")
        self._tiers = tuple(tiers)
        self._keys = keys
        self._w = workload
        self._policy = policy
        self._factory = backend_factory
        self._cfg = config
        self._rng = rng
        n = workload.num_requests
        self._arrival: list[float] = workload.arrival_s.tolist()
        self._ttft = np.full(n, np.nan)
        self._tpot = np.full(n, np.nan)
        self._e2e = np.full(n, np.nan)
        self._deadline = np.zeros(n, dtype=bool)
        self._rejected = np.zeros(n, dtype=bool)
        self._served_pool = np.full(n, -1, dtype=np.int64)
        self._preempt = np.zeros(n, dtype=np.int64)
        self._replicas: list[SimReplica] = []
        self._ready: list[list[SimReplica]] = [[] for _ in keys]
        # When each pool's newest replica became Ready, as the operator sees it: None for
        # the replicas the run starts with (an operator that starts on a running pool has
        # not seen `readyReplicas` increase).
        self._newest_ready_at_s: list[float | None] = [None for _ in keys]
        self._live: list[list[SimReplica]] = [[] for _ in keys]
        """pool -> replicas not yet gone (loading, ready, draining)."""
        self._desired: list[int] = [0 for _ in keys]
        self._ready_heap: list[tuple[float, int]] = []
        self._weights: list[list[tuple[int, float]]] = [
            [(0 if config.single_pool else i, 1.0)] for i in range(len(keys))
        ]
        self._wrr_current: list[dict[int, float]] = [{} for _ in keys]
        self._max_concurrent: list[int | None] = [None for _ in keys]
        self._finished_chunk: list[int] = []
        self._window_chunks: list[IntArray] = []
        self._rate_history: list[list[tuple[float, float]]] = [[] for _ in keys]
        self._timeline: list[TickRecord] = []
        self._scale_ups = 0
        self._scale_downs = 0
        self._started = 0
        self._max_kv = 0.0
        self._next_tick_s = config.control_interval_s
        self._last_inputs = MetricInputs()
        self._router = router
        self._uniform_buf: list[float] = []
        self._uniform_at = 0
        poll = None if router is None else router.poll_interval_s
        self._poll_interval_s = poll
        self._next_poll_s = math.inf if poll is None else poll
        # The engine judges per-token deadlines only when told finite SLOs; scoring
        # needs them only for the `deadline` criterion, and they cost a tenth of a run.
        track = config.track_deadlines
        self._slo_ttft = [t.slo.ttft_s if track else math.inf for t in tiers]
        self._slo_tpot = [t.slo.tpot_s if track else math.inf for t in tiers]
        self._ttft_override = workload.ttft_slo_s if track else None
        initial = [int(config.initial_replicas_by_pool.get(t.key, 0)) for t in tiers]
        for pool, count in enumerate(self._grant(initial)):
            for _ in range(count):
                self._add_replica(pool, 0.0, instant=True)
            self._desired[pool] = count
        self._newest_ready_at_s = [None for _ in keys]

    # ------------------------------------------------------------ main loop

    def run(self) -> FleetRun:
        arrival = self._w.arrival_s.tolist()
        tier_of = self._w.tier_index.tolist()
        prompt = self._w.prompt_tokens.tolist()
        output = self._w.output_tokens.tolist()
        ttft_override = None if self._ttft_override is None else self._ttft_override.tolist()
        slo_ttft = self._slo_ttft
        slo_tpot = self._slo_tpot
        router = self._router
        for i, t_s in enumerate(arrival):
            self._process_events_until(t_s)
            if router is not None:
                router.route(self, i, t_s)
                continue
            tier = tier_of[i]
            ttft_slo = slo_ttft[tier] if ttft_override is None else ttft_override[i]
            self._route(i, t_s, tier, prompt[i], output[i], ttft_slo, slo_tpot[tier])
        end_s = max(self._w.duration_s, arrival[-1] if arrival else 0.0)
        self._process_events_until(end_s)
        if router is not None:
            # Keep polling after the last arrival until the router's queues are empty
            # (bounded: an hour past the end, then everything left is placed at once).
            while router.pending() and self._next_poll_s < end_s + 3600.0:
                self._process_events_until(self._next_poll_s)
            router.poll(self, max(end_s, min(self._next_poll_s, end_s + 3600.0)), final=True)
        self._finish(end_s)
        return self._result(end_s)

    def _process_events_until(self, t_s: float) -> None:
        while True:
            ready_at = self._ready_heap[0][0] if self._ready_heap else math.inf
            if ready_at <= t_s and ready_at <= self._next_tick_s:
                _, rid = heapq.heappop(self._ready_heap)
                self._on_ready(self._replicas[rid])
            elif self._next_poll_s <= t_s and self._next_poll_s < self._next_tick_s:
                now = self._next_poll_s
                assert self._router is not None and self._poll_interval_s is not None
                self._router.poll(self, now)
                self._next_poll_s = now + self._poll_interval_s
            elif self._next_tick_s <= t_s:
                now = self._next_tick_s
                self._tick(now)
                self._next_tick_s = now + self._cfg.control_interval_s
            else:
                return

    def _on_ready(self, rep: SimReplica) -> None:
        if rep.state is ReplicaState.LOADING:
            rep.state = ReplicaState.READY
            self._ready[rep.pool].append(rep)
            self._newest_ready_at_s[rep.pool] = rep.ready_at_s

    # ------------------------------------------------------------ view for request routers

    @property
    def tiers(self) -> tuple[Tier, ...]:
        return self._tiers

    @property
    def workload(self) -> Workload:
        return self._w

    def ready_replicas(self, pool: int) -> list[SimReplica]:
        return self._ready[pool]

    @property
    def circuit_breakers(self) -> dict[str, int]:
        """pool (owning tier key) -> in-flight limit its router applies now (capped pools)."""
        return {k: cap for k, cap in zip(self._keys, self._max_concurrent, strict=True) if cap}

    @property
    def last_metric_inputs(self) -> MetricInputs:
        """What the last control tick measured (before `loop.observe` interpreted it)."""
        return self._last_inputs

    def advance(self, rep: SimReplica, t_s: float) -> None:
        """Bring a replica's gauges up to `t_s` (harvesting what finished)."""
        self._advance(rep, t_s)

    def submit(self, rep: SimReplica, index: int, t_s: float) -> None:
        """Send workload request `index` to `rep` at `t_s` (>= its arrival)."""
        w = self._w
        tier = int(w.tier_index[index])
        arrival = self._arrival[index]
        override = self._ttft_override
        ttft = self._slo_ttft[tier] if override is None else float(override[index])
        self._advance(rep, t_s)
        # Time spent in a router queue counts against the TTFT deadline.
        rep.backend.submit(
            index,
            t_s,
            int(w.prompt_tokens[index]),
            int(w.output_tokens[index]),
            ttft - (t_s - arrival),
            self._slo_tpot[tier],
        )
        rep.inflight += 1
        self._served_pool[index] = rep.pool

    def claim_replica(self, pool: int, t_s: float) -> SimReplica | None:
        """PolyServe's 'claim idle capacity': a new replica if the budget has room and it
        serves at once (no cold start), else an idle Ready replica taken from another pool
        that keeps its minimum; None if neither exists (with a cold start, a new replica
        is `request_replica`'s: it serves only once loaded)."""
        tier = self._tiers[pool]
        instant = tier.scaling.cold_start_s <= 0 or self._policy.instant_scaling
        if instant and self._has_room(pool):
            self._add_replica(pool, t_s, instant=True)
            self._desired[pool] += 1
            self._scale_ups += 1
            return self._ready[pool][-1]
        for other, reps in enumerate(self._ready):
            if other == pool or len(reps) <= self._tiers[other].pool.min_replicas:
                continue
            for rep in reps:
                self._advance(rep, t_s)
                if rep.inflight == 0:
                    self.move_replica(rep, pool)
                    return rep
        return None

    def request_replica(self, pool: int, t_s: float) -> bool:
        """Start one more replica for `pool` (it serves after the pool's cold start);
        False when the budget or maxReplicas leaves no room."""
        if not self._has_room(pool):
            return False
        self._add_replica(pool, t_s, instant=False)
        self._desired[pool] += 1
        self._scale_ups += 1
        return True

    def loading_replicas(self, pool: int) -> int:
        return sum(1 for r in self._live[pool] if r.state is ReplicaState.LOADING)

    def _has_room(self, pool: int) -> bool:
        tier = self._tiers[pool]
        budget = self._cfg.budget_gpus
        room = budget is None or self._gpus_in_use() + tier.pool.gpus_per_replica <= budget
        return room and self._current(pool) < tier.pool.max_replicas

    def reject(self, index: int) -> None:
        self._rejected[index] = True

    def is_done(self, index: int) -> bool:
        return bool(self._rejected[index]) or not math.isnan(self._e2e[index])

    def move_replica(self, rep: SimReplica, pool: int) -> None:
        """Hand a Ready replica to another pool at once (same model: only routing changes)."""
        if rep.pool == pool or rep.state is not ReplicaState.READY:
            return
        self._ready[rep.pool].remove(rep)
        self._live[rep.pool].remove(rep)
        self._desired[rep.pool] = max(0, self._desired[rep.pool] - 1)
        rep.pool = pool
        self._ready[pool].append(rep)
        self._live[pool].append(rep)
        self._desired[pool] += 1

    # ------------------------------------------------------------ routing

    def _route(
        self,
        i: int,
        t_s: float,
        tier: int,
        prompt: int,
        output: int,
        ttft_slo_s: float,
        tpot_slo_s: float,
    ) -> None:
        pool = self._pick_pool(tier)
        rep = self._pick_replica(pool, t_s)
        if rep is None:
            # Envoy picks one weighted cluster per request; with no Ready endpoint or its
            # circuit breaker open, that request gets a 503 (retries stay in the cluster).
            self._rejected[i] = True
            return
        rep.backend.submit(i, t_s, prompt, output, ttft_slo_s, tpot_slo_s)
        rep.inflight += 1
        self._served_pool[i] = pool

    def _pick_pool(self, tier: int) -> int:
        """Smooth weighted round robin over the tier's pools (an exact split, not a noisy one)."""
        weights = self._weights[tier]
        if len(weights) == 1:
            return weights[0][0]
        current = self._wrr_current[tier]
        total = 0.0
        best, best_val = weights[0][0], -math.inf
        for pool, w in weights:
            val = current.get(pool, 0.0) + w
            current[pool] = val
            total += w
            if val > best_val:
                best, best_val = pool, val
        current[best] -= total
        return best

    def _pick_replica(self, pool: int, t_s: float) -> SimReplica | None:
        ready = self._ready[pool]
        if not ready:
            return None
        cap = self._max_concurrent[pool]
        if cap is not None and not self._under_cap(pool, cap, t_s):
            return None
        n = len(ready)
        if n <= 2:
            candidates: Iterable[SimReplica] = ready
        else:
            a = int(self._uniform() * n)
            b = int(self._uniform() * (n - 1))
            candidates = (ready[a], ready[b + 1 if b >= a else b])
        best: SimReplica | None = None
        best_load = math.inf
        for rep in candidates:
            self._advance(rep, t_s)
            load = rep.backend.outstanding_tokens
            if load < best_load:
                best, best_load = rep, load
        return best

    def _uniform(self) -> float:
        """A U[0,1) draw from a pre-filled buffer: one numpy call per 4096 draws, not one
        per request (the router's two random choices are on the hot path)."""
        if self._uniform_at >= len(self._uniform_buf):
            self._uniform_buf = self._rng.random(4096).tolist()
            self._uniform_at = 0
        u = self._uniform_buf[self._uniform_at]
        self._uniform_at += 1
        return u

    def _under_cap(self, pool: int, cap: int, t_s: float) -> bool:
        # In-flight counts are stale upper bounds until a replica is advanced; refresh only
        # when the stale count says the breaker would trip.
        if sum(r.inflight for r in self._live[pool]) < cap:
            return True
        for rep in self._live[pool]:
            self._advance(rep, t_s)
        return sum(r.inflight for r in self._live[pool]) < cap

    # ------------------------------------------------------------ replica bookkeeping

    def _advance(self, rep: SimReplica, t_s: float) -> None:
        if rep.inflight:
            self._harvest(rep, rep.backend.run_until(t_s))

    def _harvest(self, rep: SimReplica, done: list[Finished]) -> None:
        for f in done:
            i = f.index
            arrival_s = self._arrival[i]
            self._ttft[i] = f.first_token_s - arrival_s
            self._tpot[i] = f.tpot_s
            self._e2e[i] = f.finish_s - arrival_s
            self._deadline[i] = f.deadline_met
            self._preempt[i] = f.preemptions
            self._finished_chunk.append(i)
            rep.last_finish_s = max(rep.last_finish_s, f.finish_s)
        rep.inflight -= len(done)

    def _add_replica(self, pool: int, now_s: float, instant: bool) -> None:
        cold_s = 0.0 if instant else self._tiers[pool].scaling.cold_start_s
        rep = SimReplica(
            replica_id=len(self._replicas),
            pool=pool,
            backend=self._factory(self._keys[pool]),
            requested_at_s=now_s,
            ready_at_s=now_s + cold_s,
            state=ReplicaState.LOADING,
        )
        self._replicas.append(rep)
        self._live[pool].append(rep)
        self._started += 1
        if cold_s <= 0:
            self._on_ready(rep)
        else:
            heapq.heappush(self._ready_heap, (rep.ready_at_s, rep.replica_id))

    def _retire(self, rep: SimReplica, now_s: float) -> None:
        if rep.state is ReplicaState.LOADING:
            rep.state = ReplicaState.GONE
            rep.gone_at_s = now_s
            self._live[rep.pool].remove(rep)
            return
        self._ready[rep.pool].remove(rep)
        rep.state = ReplicaState.DRAINING
        rep.drain_started_s = now_s
        self._collect_if_drained(rep)

    def _collect_if_drained(self, rep: SimReplica) -> None:
        if rep.state is ReplicaState.DRAINING and rep.inflight == 0:
            rep.state = ReplicaState.GONE
            rep.gone_at_s = max(rep.drain_started_s, rep.last_finish_s)
            self._live[rep.pool].remove(rep)

    # ------------------------------------------------------------ control loop

    def _tick(self, now_s: float) -> None:
        for pool_reps in self._live:
            for rep in list(pool_reps):
                self._advance(rep, now_s)
                self._collect_if_drained(rep)
                if rep.state is not ReplicaState.LOADING:
                    self._max_kv = max(self._max_kv, rep.backend.kv_usage_frac)
        self._window_chunks.append(np.asarray(self._finished_chunk, dtype=np.int64))
        self._finished_chunk = []
        # One chunk more than the window needs: the window ends at the last scrape, which
        # may fall inside the oldest tick interval.
        keep = 1 + max(1, math.ceil(self._cfg.metrics_window_s / self._cfg.control_interval_s))
        del self._window_chunks[:-keep]
        observations = self._observe(now_s)
        command = self._policy.decide(now_s, observations)
        explanation = explain.explanation_of(self._policy)
        self._actuate(now_s, command)
        self._timeline.append(
            TickRecord(
                t_s=now_s,
                rate_by_tier_rps={k: (o.rate_rps or 0.0) for k, o in observations.by_tier.items()},
                desired_by_pool=dict(zip(self._keys, self._desired, strict=True)),
                ready_by_pool={k: len(self._ready[p]) for p, k in enumerate(self._keys)},
                current_by_pool={k: self._current(p) for p, k in enumerate(self._keys)},
                gpus_in_use=self._gpus_in_use(),
                explanation_by_tier=explanation,
            )
        )

    def _current(self, pool: int) -> int:
        return sum(1 for r in self._live[pool] if r.state is not ReplicaState.DRAINING)

    def _gpus_in_use(self) -> int:
        return sum(
            len(reps) * self._tiers[p].pool.gpus_per_replica for p, reps in enumerate(self._live)
        )

    def _observe(self, now_s: float) -> Observations:
        """What a cluster's Prometheus would give at `now_s`, through the operator's own
        interpretation (`loop.observe`): the policies see no number a cluster cannot."""
        self._last_inputs = self._metric_inputs(now_s)
        return observe.observations(self._tiers, self._last_inputs)

    def _metric_inputs(self, now_s: float) -> MetricInputs:
        """Envoy's per-tier arrivals, vLLM's per-pool histograms and gauges, Kubernetes'
        replica counts, as of the last scrape at or before `now_s` over the window.

        Each finished request is observed in its pool's histograms with vLLM's bucket
        bounds (TTFT and per-request TPOT, prompt and generated tokens); rejected requests
        never reach vLLM and are in none of them. The simulator records a request when it
        finishes (vLLM records TTFT at the first token): a window's TTFT histogram lags
        by at most one request's decode time.
        """
        scrape = self._cfg.scrape_interval_s
        sampled = math.floor(now_s / scrape + 1e-9) * scrape if scrape > 0 else now_s
        window_s = min(self._cfg.metrics_window_s, sampled)
        w = self._w
        lo, hi = np.searchsorted(w.arrival_s, [sampled - window_s, sampled], side="right")
        tiers_in = w.tier_index[lo:hi]
        done = np.concatenate(self._window_chunks) if self._window_chunks else np.zeros(0, int)
        finish = w.arrival_s[done] + self._e2e[done]
        done = done[(finish > sampled - window_s) & (finish <= sampled)]
        done_pool = self._served_pool[done]
        traffic: dict[str, TierTraffic] = {}
        signals: dict[str, PoolSignals] = {}
        replicas: dict[str, PoolReplicas] = {}
        for p, tier in enumerate(self._tiers):
            rate = float((tiers_in == p).sum()) / window_s if window_s > 0 else 0.0
            hist = self._rate_history[p]
            hist.append((sampled, rate))
            while hist and hist[0][0] < sampled - self._cfg.rate_history_s:
                hist.pop(0)
            traffic[tier.key] = TierTraffic(
                sampled_at_s=sampled,
                window_s=window_s,
                rate_rps=rate,
                rate_history_rps=tuple(hist),
            )
            key = naming.pool_key(tier)
            pool_done = done[done_pool == p]
            token_buckets = _token_buckets(tier.pool.max_model_len)
            serving = [r for r in self._live[p] if r.state is not ReplicaState.LOADING]
            ready = self._ready[p]
            signals[key] = PoolSignals(
                sampled_at_s=sampled,
                window_s=window_s,
                ttft=Histogram.of(self._ttft[pool_done].tolist(), vllm.TTFT_BUCKETS_S),
                tpot=Histogram.of(self._tpot[pool_done].tolist(), vllm.ITL_BUCKETS_S),
                prompt_tokens=Histogram.of(w.prompt_tokens[pool_done].tolist(), token_buckets),
                output_tokens=Histogram.of(w.output_tokens[pool_done].tolist(), token_buckets),
                finished_rate_rps=pool_done.size / window_s if window_s > 0 else None,
                running_requests=float(sum(r.backend.num_running for r in serving)),
                waiting_requests=float(sum(r.backend.num_waiting for r in serving)),
                kv_usage_frac=(
                    float(np.mean([r.backend.kv_usage_frac for r in ready])) if ready else None
                ),
            )
            replicas[key] = PoolReplicas(
                current=self._current(p),
                ready=len(ready),
                newest_ready_at_s=self._newest_ready_at_s[p],
            )
        return MetricInputs(
            traffic_by_tier=traffic, signals_by_pool=signals, replicas_by_pool=replicas
        )

    def _actuate(self, now_s: float, command: FleetCommand) -> None:
        desired = [
            max(0, int(command.desired_replicas_by_pool.get(k, self._desired[p])))
            for p, k in enumerate(self._keys)
        ]
        granted = self._grant(desired)
        for p in range(len(self._keys)):
            excess = self._current(p) - granted[p]
            if excess > 0:
                self._scale_down(p, excess, now_s)
        budget = self._cfg.budget_gpus
        order = sorted(range(len(self._keys)), key=lambda p: -self._tiers[p].priority)
        instant = self._policy.instant_scaling
        for p in order:
            missing = granted[p] - self._current(p)
            if missing <= 0:
                continue
            gpus = self._tiers[p].pool.gpus_per_replica
            if budget is not None:
                # Draining replicas still hold their GPUs until their requests finish.
                missing = min(missing, max(0, budget - self._gpus_in_use()) // gpus)
            for _ in range(missing):
                self._add_replica(p, now_s, instant=instant)
            if missing > 0:
                self._scale_ups += 1
        self._desired = desired
        self._set_routes(command)

    def _grant(self, desired: list[int]) -> list[int]:
        """Replicas each pool may have under the GPU budget: granted by tier priority, like
        Kubernetes priority classes preempting lower-priority pods when GPUs run out."""
        budget = self._cfg.budget_gpus
        if budget is None:
            return desired
        granted = [0 for _ in desired]
        left = budget
        for p in sorted(range(len(desired)), key=lambda p: -self._tiers[p].priority):
            gpus = self._tiers[p].pool.gpus_per_replica
            granted[p] = min(desired[p], max(0, left) // gpus)
            left -= granted[p] * gpus
        return granted

    def _scale_down(self, pool: int, count: int, now_s: float) -> None:
        loading = [r for r in self._live[pool] if r.state is ReplicaState.LOADING]
        loading.sort(key=lambda r: -r.requested_at_s)
        victims = loading[:count]
        ready = sorted(self._ready[pool], key=lambda r: (r.backend.outstanding_tokens, r.inflight))
        victims += ready[: count - len(victims)]
        for rep in victims:
            self._retire(rep, now_s)
        self._scale_downs += 1

    def _set_routes(self, command: FleetCommand) -> None:
        self._max_concurrent = [command.max_concurrent_by_pool.get(k) for k in self._keys]
        if self._cfg.single_pool:
            # Every tier's traffic reaches the first pool: the limits meant for each
            # tier's pool add up there (any tier without one leaves the pool unlimited).
            caps = self._max_concurrent
            whole = None if any(c is None for c in caps) else sum(c for c in caps if c)
            self._max_concurrent = [whole] + [None] * (len(caps) - 1)
            self._weights = [[(0, 1.0)] for _ in self._keys]
            return
        index = {k: p for p, k in enumerate(self._keys)}
        for t, key in enumerate(self._keys):
            shares = command.weights_by_tier.get(key)
            routes = (
                sorted(
                    ((index[k], float(w)) for k, w in shares.items() if w > 0 and k in index),
                    key=lambda pw: -pw[1],
                )
                if shares
                else []
            )
            new = routes or [(t, 1.0)]
            if new != self._weights[t]:
                self._weights[t] = new
                self._wrr_current[t] = {}

    # ------------------------------------------------------------ end of run

    def _finish(self, end_s: float) -> None:
        for rep in self._replicas:
            if rep.state is ReplicaState.GONE:
                continue
            self._harvest(rep, rep.backend.drain())
            rep.gone_at_s = (
                max(rep.drain_started_s, rep.last_finish_s)
                if rep.state is ReplicaState.DRAINING
                else end_s
            )
            rep.state = ReplicaState.GONE
        self._finished_chunk = []

    def _result(self, end_s: float) -> FleetRun:
        hours_by_pool = {k: 0.0 for k in self._keys}
        for rep in self._replicas:
            gone = end_s if rep.gone_at_s is None else min(rep.gone_at_s, end_s)
            span = max(0.0, gone - rep.requested_at_s)
            hours_by_pool[self._keys[rep.pool]] += (
                span * self._tiers[rep.pool].pool.gpus_per_replica / 3600.0
            )
        return FleetRun(
            workload=self._w,
            outcomes=Outcomes(
                ttft_s=self._ttft,
                tpot_s=self._tpot,
                e2e_s=self._e2e,
                deadline_met=self._deadline,
                rejected=self._rejected,
                served_pool=self._served_pool,
                preemptions=self._preempt,
            ),
            timeline=tuple(self._timeline),
            gpu_hours=sum(hours_by_pool.values()),
            gpu_hours_by_pool=hours_by_pool,
            scale_ups=self._scale_ups,
            scale_downs=self._scale_downs,
            replicas_started=self._started,
            max_kv_usage_frac=self._max_kv,
            end_s=end_s,
        )


@functools.cache
def _token_buckets(max_model_len: int | None) -> tuple[float, ...]:
    """`vllm:request_prompt_tokens` / `_generation_tokens` bounds: 1-2-5 up to the pool's
    `--max-model-len` (Llama-3.1's context length when unset), as vLLM builds them."""
    return vllm.one_two_five_buckets(max_model_len or vllm.DEFAULT_MAX_MODEL_LEN)
