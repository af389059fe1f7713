"""Drive one engine model replica with the wall clock and release tokens when they exist.

The engine (``tierscale_predictor.engine.Replica``) is a discrete-time model that only
reports a request once it has finished. A streaming client needs its first token at the
first-token time, long before that. Because the engine is deterministic, the future of
the requests submitted so far is fixed until the next submission: after each batch of
submissions a *shadow copy* of the replica is drained to forecast every in-flight
request's first-token and finish times. Forecasts are exact for the engine model; a later
arrival can only change tokens that have not been released yet.

Per-token times inside one request are spaced evenly between first token and finish
(``token_schedule``); the engine does not expose per-step emission.

Clock: engine time = ``clock() - t0`` of this replica, in seconds. A request is submitted
with its real arrival time ``now``; the engine admits it at the next step boundary (as
vLLM does), and its TTFT counts from ``now``, like vLLM's server-side TTFT.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from tierscale_predictor import engine
from tierscale_testbed.simvllm import metrics, token_schedule

_MAX_TOKEN_SLEEP_S = 0.05


@dataclass(slots=True)
class InFlight:
    """One request between submission and its last released token."""

    request_id: int
    arrival_s: float  # engine clock, when the API call arrived
    prompt_tokens: int
    output_tokens: int
    schedule_s: list[float] | None = None  # forecast token times, engine clock
    timing: engine.RequestTiming | None = None  # set when the real replica finished it
    accounted_tokens: int = 0  # tokens already counted in the metrics
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class RealtimeEngine:
    """A ``Replica`` advanced by the wall clock, with streaming token release and metrics."""

    def __init__(
        self,
        replica: engine.Replica,
        vllm_metrics: metrics.VllmMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = 0.005,
    ) -> None:
        self._replica = replica
        self._metrics = vllm_metrics
        self._clock = clock
        self._t0 = clock()
        self._tick_s = tick_s
        self._ids = itertools.count()
        self._in_flight: dict[int, InFlight] = {}
        self._forecast_due = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._preemptions_total = 0

    def now_s(self) -> float:
        return self._clock() - self._t0

    @property
    def num_in_flight(self) -> int:
        return len(self._in_flight)

    def submit(self, *, prompt_tokens: int, output_tokens: int) -> InFlight:
        """Queue a request now; raises ValueError if the engine refuses it (too long)."""
        now = self.now_s()
        request_id = next(self._ids)
        self._replica.submit(
            engine.EngineRequest(
                request_id=request_id,
                arrival_s=now,
                prompt_tokens=prompt_tokens,
                output_tokens=output_tokens,
            )
        )
        flight = InFlight(request_id, now, prompt_tokens, output_tokens)
        self._in_flight[request_id] = flight
        self._forecast_due = True
        self._idle.clear()
        self._wake.set()
        return flight

    async def tokens(self, flight: InFlight) -> AsyncIterator[int]:
        """Yield each token index (0 = first) once its time has come.

        Sleeps with plain timers (no task per token); a forecast that moves a token
        earlier is noticed within ``_MAX_TOKEN_SLEEP_S``, one that moves it later on wake-up.
        """
        released = 0
        while released < flight.output_tokens:
            schedule = flight.schedule_s
            if schedule is None:
                flight.changed.clear()
                await flight.changed.wait()
                continue
            now = self.now_s()
            due = token_schedule.due_count(schedule, now)
            if due > released:
                for index in range(released, due):
                    yield index
                released = due
                continue
            await asyncio.sleep(min(schedule[released] - now, _MAX_TOKEN_SLEEP_S))

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def run(self) -> None:
        """The engine loop: forecast, advance, account, sleep; runs until cancelled."""
        while True:
            self.step(self.now_s())
            if self._in_flight:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._tick_s)
            else:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()

    def step(self, now_s: float) -> None:
        """One loop iteration at engine time ``now_s`` (separate for deterministic tests)."""
        if self._forecast_due:
            self._forecast()
        for timing in self._replica.run_until(now_s):
            flight = self._in_flight[timing.request_id]
            flight.timing = timing
            flight.schedule_s = token_schedule.token_times_s(
                timing.first_token_s, timing.finish_s, timing.output_tokens
            )
            flight.changed.set()
            self._preemptions_total += timing.preemptions
        self._account(now_s)
        self._metrics.set_gauges(
            metrics.EngineGauges(
                running=self._replica.num_running,
                waiting=self._replica.num_waiting,
                kv_usage_frac=self._replica.kv_usage_frac,
            ),
            preemptions_total=self._preemptions_total,
        )

    def _forecast(self) -> None:
        self._forecast_due = False
        profile = self._replica.profile
        shadow = copy.deepcopy(self._replica, memo={id(profile): profile})
        for timing in shadow.drain():
            flight = self._in_flight.get(timing.request_id)
            if flight is None:
                continue
            flight.schedule_s = token_schedule.token_times_s(
                timing.first_token_s, timing.finish_s, timing.output_tokens
            )
            flight.changed.set()

    def _account(self, now_s: float) -> None:
        """Count released tokens in the metrics; retire requests whose last token is out."""
        done: list[int] = []
        for flight in self._in_flight.values():
            schedule = flight.schedule_s
            if schedule is None:
                continue
            due = token_schedule.due_count(schedule, now_s)
            for index in range(flight.accounted_tokens, due):
                if index == 0:
                    self._metrics.observe_first_token(schedule[0] - flight.arrival_s)
                else:
                    self._metrics.observe_next_token(schedule[index] - schedule[index - 1])
            flight.accounted_tokens = max(flight.accounted_tokens, due)
            if flight.timing is not None and flight.accounted_tokens == flight.output_tokens:
                self._finish(flight, flight.timing)
                done.append(flight.request_id)
        for request_id in done:
            del self._in_flight[request_id]

    def _finish(self, flight: InFlight, timing: engine.RequestTiming) -> None:
        self._metrics.observe_finished(
            prompt_tokens=flight.prompt_tokens,
            output_tokens=flight.output_tokens,
            queue_s=timing.first_scheduled_s - flight.arrival_s,
            prefill_s=timing.first_token_s - timing.first_scheduled_s,
            decode_s=timing.finish_s - timing.first_token_s,
            e2e_s=timing.finish_s - flight.arrival_s,
        )
