"""`polyserve`: PolyServe's multi-SLO routing and scaling (arXiv 2507.17769), re-implemented.

- Tier bins: every TPOT tier has its own replicas (its pool).
- Load gradient: a request goes to the *most* loaded replica of its tier that still passes
  the admission test, which keeps the least loaded replicas idle so they can be released.
- Admission test, from the step-time profile (PolyServe's profiled iteration-time table):
  the batch's future KV must fit the cache, and
  the steady iteration time with the request added (batch + 1, KV tokens + its context,
  and the prefill tokens an average step carries, batch * mean prompt / mean output)
  must stay within the host tier's TPOT, and the predicted TTFT (queued prefills ahead of
  it plus its own prefill and one iteration) within the request's remaining TTFT budget.
- Lazy promotion: if no replica of its tier passes, try tighter tiers' replicas (judged
  against the host tier's TPOT), nearest tier first.
- Scale up by claiming idle capacity: a new instant replica if the GPU budget has room,
  else an idle replica of another tier. The paper's simulator assumes free, instant
  scale-up; where replicas take a cold start to load, requests that find no room wait in
  the router queue while new replicas load: every poll, a tier whose requests wait gets
  as many loading replicas as the rate of its requests that found no room (over the
  last `overflow_window_s`) needs at the pool's measured throughput per Ready replica
  (finished requests per second, as of the last control tick), within the budget and
  maxReplicas.
- Otherwise the request waits in the router queue and is retried every poll (the paper's
  router queue), without blocking later arrivals; once its TTFT budget is spent, waiting
  cannot help it and it goes best-effort to the least loaded replica of its tier.
- Release: every control tick, idle replicas beyond one per tier are released.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from tierscale.domain.observations import Observations
from tierscale.domain.tiers import Tier
from tierscale_predictor.profiles import StepProfile
from tierscale_sim.commands import FleetCommand
from tierscale_sim.fleet import Fleet, SimReplica


class PolyServePolicy:
    name = "polyserve"
    instant_scaling = False
    poll_interval_s: float | None = 0.05
    overflow_window_s = 15.0
    """Window of the overflow rate that sizes replicas loaded with a cold start."""
    headroom_frac = 0.8
    """Admit only while the steady step stays under this share of the host TPOT: the
    paper's 'TTFT + next iteration within TTFT + TPOT' slack for per-token deadlines."""

    def __init__(self, tiers: Sequence[Tier], profile_by_tier: dict[str, StepProfile]) -> None:
        self._tiers = tuple(tiers)
        self._profiles = [profile_by_tier[t.key] for t in tiers]
        # Tighter tiers for each tier, nearest (loosest of the tighter ones) first.
        self._promote: list[list[int]] = []
        for t in tiers:
            tighter = [j for j, o in enumerate(tiers) if o.slo.tpot_s < t.slo.tpot_s]
            tighter.sort(key=lambda j: -tiers[j].slo.tpot_s)
            self._promote.append(tighter)
        self._queue: deque[int] = deque()
        self._fleet: Fleet | None = None
        self._columns: tuple[list[int], list[int], list[float], list[float], float] | None = None
        self._prefill_per_decode = 0.0
        self._mean_output = 0.0
        self._cold_claims = 0
        self._overflow: list[deque[float]] = [deque() for _ in tiers]
        """tier -> arrival times of its requests that found no room (recent ones)."""
        self._served_per_replica_rps: dict[int, float] = {}
        """pool -> finished requests per second per Ready replica, at the last tick."""
        """Replicas started with a cold start for waiting requests (reported in `detail`)."""

    @property
    def run_detail(self) -> str:
        """What the run's report says about this policy (see `runner.run_policy`)."""
        if not self._cold_claims:
            return ""
        return f"{self._cold_claims} replicas loaded (cold start) for requests that waited"

    def _cols(self, fleet: Fleet) -> tuple[list[int], list[int], list[float], list[float], float]:
        """Workload columns as Python lists, built once (the hot path reads scalars)."""
        if self._columns is None:
            w = fleet.workload
            ttft = (
                w.ttft_slo_s.tolist()
                if w.ttft_slo_s is not None
                else [self._tiers[t].slo.ttft_s for t in w.tier_index.tolist()]
            )
            mean_prompt = float(w.prompt_tokens.mean()) if w.num_requests else 0.0
            mean_output = float(w.output_tokens.mean()) if w.num_requests else 1.0
            self._prefill_per_decode = mean_prompt / max(mean_output, 1.0)
            self._mean_output = mean_output
            self._columns = (
                w.prompt_tokens.tolist(),
                w.tier_index.tolist(),
                ttft,
                w.arrival_s.tolist(),
                mean_prompt,
            )
        return self._columns

    @property
    def router(self) -> PolyServePolicy:
        return self

    # ------------------------------------------------------------ routing

    def _passes(self, fleet: Fleet, rep: SimReplica, index: int, t_s: float) -> bool:
        prompts, _, ttft_slo, arrival, mean_prompt = self._cols(fleet)
        host = self._tiers[rep.pool]
        prof = self._profiles[rep.pool]
        b = rep.backend
        prompt = prompts[index]
        batch = b.num_running + b.num_waiting + 1
        # Future KV: what the batch holds now, plus what it still grows by, plus this one.
        future_kv = b.kv_used_tokens + batch * self._mean_output / 2 + prompt
        if future_kv > prof.kv_capacity_tokens:
            return False
        # Steady state: each running request was once a prefill, so an average step also
        # carries batch * prompt/output prefill tokens (chunked prefill shares the step).
        step_s = prof.step_s(batch * self._prefill_per_decode, batch, b.kv_used_tokens + prompt)
        if step_s > self.headroom_frac * host.slo.tpot_s:
            return False
        left_s = ttft_slo[index] - (t_s - arrival[index])
        queued_prefill = (b.num_waiting * mean_prompt + prompt) * prof.prefill_s_per_token
        return queued_prefill + step_s <= left_s

    def _place(self, fleet: Fleet, index: int, t_s: float) -> bool:
        tier = self._cols(fleet)[1][index]
        for pool in [tier, *self._promote[tier]]:
            reps = fleet.ready_replicas(pool)
            for rep in reps:
                fleet.advance(rep, t_s)
            # Load gradient: most loaded first (running + waiting requests, cheap gauges).
            by_load = sorted(reps, key=lambda r: -(r.backend.num_running + r.backend.num_waiting))
            for rep in by_load:
                if self._passes(fleet, rep, index, t_s):
                    fleet.submit(rep, index, t_s)
                    return True
        claimed = fleet.claim_replica(tier, t_s)
        if claimed is not None:
            fleet.submit(claimed, index, t_s)
            return True
        return False

    def route(self, fleet: Fleet, index: int, t_s: float) -> None:
        self._fleet = fleet
        if not self._place(fleet, index, t_s):
            self._queue.append(index)
            self._overflow[self._cols(fleet)[1][index]].append(t_s)

    def pending(self) -> int:
        return len(self._queue)

    def poll(self, fleet: Fleet, now_s: float, final: bool = False) -> None:
        """Retry every queued request; one whose TTFT budget is already spent can no longer
        be helped by waiting and goes best-effort to its tier's least loaded replica."""
        _, tier_of, ttft_slo, arrival, _ = self._cols(fleet)
        waiting: deque[int] = deque()
        while self._queue:
            index = self._queue.popleft()
            if self._place(fleet, index, now_s):
                continue
            if final or now_s - arrival[index] >= ttft_slo[index]:
                self._fallback(fleet, index, now_s)
            else:
                waiting.append(index)
        self._queue = waiting
        if waiting and not final:
            self._load_more(fleet, {tier_of[i] for i in waiting}, now_s)

    def _load_more(self, fleet: Fleet, waiting_tiers: set[int], now_s: float) -> None:
        """With cold starts, claiming cannot add a serving replica at once: start loading
        as many replicas as the tier's overflow rate needs, minus those already loading."""
        for pool in waiting_tiers:
            if self._tiers[pool].scaling.cold_start_s <= 0:
                continue
            overflow = self._overflow[pool]
            while overflow and overflow[0] < now_s - self.overflow_window_s:
                overflow.popleft()
            rate_rps = len(overflow) / self.overflow_window_s
            per_replica_rps = self._served_per_replica_rps.get(pool) or rate_rps
            need = math.ceil(rate_rps / per_replica_rps - 1e-9) if per_replica_rps > 0 else 1
            for _ in range(max(0, max(need, 1) - fleet.loading_replicas(pool))):
                if not fleet.request_replica(pool, now_s):
                    break
                self._cold_claims += 1

    def _fallback(self, fleet: Fleet, index: int, t_s: float) -> None:
        tier = int(fleet.workload.tier_index[index])
        reps = fleet.ready_replicas(tier) or [
            r for p in range(len(self._tiers)) for r in fleet.ready_replicas(p)
        ]
        if not reps:
            fleet.reject(index)
            return
        fleet.submit(min(reps, key=lambda r: r.backend.outstanding_tokens), index, t_s)

    # ------------------------------------------------------------ release

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        fleet = self._fleet
        desired: dict[str, int] = {}
        for pool, tier in enumerate(self._tiers):
            obs = observations.get(tier.key)
            current = (obs.current_replicas or 0) if obs else 0
            if obs is not None and obs.pool_rate_rps and obs.ready_replicas:
                self._served_per_replica_rps[pool] = obs.pool_rate_rps / obs.ready_replicas
            if fleet is None:
                desired[tier.key] = current
                continue
            idle = sum(1 for r in fleet.ready_replicas(pool) if r.inflight == 0)
            release = max(0, min(idle - 1, current - tier.pool.min_replicas))
            desired[tier.key] = current - release
        return FleetCommand(desired_replicas_by_pool=desired)
