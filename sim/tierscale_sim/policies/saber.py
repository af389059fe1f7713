"""`saber`: SABER's per-request SLA admission on one vLLM replica (arXiv 2506.19677).

Paper version, as summarised in docs: every 0.1 s take a request from the high-priority
queue (a random pick among the first 20, against head-of-line blocking); its required
speed is max_tokens / time left to its end-to-end deadline; admit it only if the
predicted per-request speed at load + 1 still covers its required speed and that of every
running request; infeasible or expired requests move to a low-priority FIFO that is
served only when the high-priority queue is empty (and, in our reading, only while one
more request keeps every running request feasible). Nothing is dropped: whatever is still
queued when the run ends is submitted then.

The speed model f(load) (tokens/s per request, output tokens / end-to-end time) is
measured offline as SABER does: closed-loop runs of the CodeGen template on the same
engine model at fixed concurrencies, interpolated between the measured loads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from tierscale.domain.observations import Observations
from tierscale.domain.tiers import Tier
from tierscale_predictor import loadgen
from tierscale_predictor.profiles import StepProfile
from tierscale_sim.commands import FleetCommand
from tierscale_sim.fleet import Fleet

SPEED_LOADS = (1, 2, 4, 6, 10, 15, 20, 30, 40, 50, 60, 80, 100, 150, 200)
"""Concurrencies at which the offline speed curve is measured."""
TEMPLATE_TOKENS = (665, 387)
"""CodeGen prompt / max_tokens: the template SABER's released curve was measured with."""

PICK_WINDOW = 20
"""The random pick looks at the first this-many queued requests."""


class SaberPolicy:
    name = "saber"
    instant_scaling = False
    poll_interval_s: float | None = 0.1

    def __init__(
        self,
        tiers: Sequence[Tier],
        profile: StepProfile,
        e2e_slo_by_tier_s: Mapping[str, float],
        rng: np.random.Generator,
    ) -> None:
        self._tiers = tuple(tiers)
        self._profile = profile
        self._sla = [e2e_slo_by_tier_s.get(t.key, t.slo.ttft_s) for t in tiers]
        self._rng = rng
        self._high: list[int] = []
        self._low: deque[int] = deque()
        self._running: dict[int, float] = {}
        """request index -> time admitted."""
        self._speed_table: tuple[list[float], list[float]] | None = None

    @property
    def router(self) -> SaberPolicy:
        return self

    def speed_tps(self, load: int) -> float:
        """Predicted speed of each request (tokens/s, output / end-to-end) at `load`."""
        if self._speed_table is None:
            self._speed_table = measure_speed_curve(self._profile)
        loads, speeds = self._speed_table
        return float(np.interp(max(load, 1), loads, speeds))

    def decide(self, now_s: float, observations: Observations) -> FleetCommand:
        return FleetCommand(desired_replicas_by_pool={})

    def route(self, fleet: Fleet, index: int, t_s: float) -> None:
        self._high.append(index)

    def _deadline(self, fleet: Fleet, index: int) -> float:
        w = fleet.workload
        return float(w.arrival_s[index]) + self._sla[int(w.tier_index[index])]

    def pending(self) -> int:
        return len(self._high) + len(self._low)

    def poll(self, fleet: Fleet, now_s: float, final: bool = False) -> None:
        reps = fleet.ready_replicas(0)
        if not reps:
            if final:
                for i in [*self._high, *self._low]:
                    fleet.reject(i)
            return
        rep = reps[0]
        fleet.advance(rep, now_s)
        self._running = {i: t for i, t in self._running.items() if not fleet.is_done(i)}
        if final:
            for i in [*self._high, *self._low]:
                fleet.submit(rep, i, now_s)
            self._high, self._low = [], deque()
            return
        w = fleet.workload
        while self._high:
            k = int(self._rng.integers(0, min(PICK_WINDOW, len(self._high))))
            i = self._high.pop(k)
            left_s = self._deadline(fleet, i) - now_s
            if left_s > 0 and self._feasible(fleet, int(w.output_tokens[i]) / left_s, now_s):
                fleet.submit(rep, i, now_s)
                self._running[i] = now_s
            else:
                self._low.append(i)
        # The low-priority queue runs only when the high one is empty, and (our reading of
        # "served when idle") only while one more request keeps the running ones feasible.
        while self._low and self._feasible(fleet, 0.0, now_s):
            i = self._low.popleft()
            fleet.submit(rep, i, now_s)
            self._running[i] = now_s

    def _feasible(self, fleet: Fleet, required_tps: float, now_s: float) -> bool:
        speed = self.speed_tps(len(self._running) + 1)
        if speed < required_tps:
            return False
        w = fleet.workload
        for j, admitted_s in self._running.items():
            left_s = self._deadline(fleet, j) - now_s
            if left_s <= 0:
                continue  # already late: admitting more cannot save it
            done = (now_s - admitted_s) * self.speed_tps(len(self._running))
            remaining = max(1.0, float(w.output_tokens[j]) - done)
            if speed < remaining / left_s:
                return False
        return True


def measure_speed_curve(profile: StepProfile) -> tuple[list[float], list[float]]:
    """SABER's offline step: per-request speed (output / e2e) against concurrency."""
    prompt, output = TEMPLATE_TOKENS
    speeds: list[float] = []
    for load in SPEED_LOADS:
        timings = loadgen.closed_loop(profile, load, prompt, output, max(2 * load, 20))
        speeds.append(float(np.mean([t.output_tokens / t.e2e_s for t in timings])))
    return [float(x) for x in SPEED_LOADS], speeds
