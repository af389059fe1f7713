"""What the fleet needs from one replica model, and the adapter onto the vLLM engine model.

The fleet only talks to `ReplicaBackend`; production runs use `EngineBackend`, which wraps
`tierscale_predictor.engine.Replica`. Tests may plug a hand-computable backend in to check
fleet bookkeeping without depending on the engine's step-time numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tierscale_predictor import engine
from tierscale_predictor.profiles import StepProfile


@dataclass(frozen=True, slots=True)
class Finished:
    """One served request, in fleet terms (index into the workload arrays)."""

    index: int
    first_token_s: float
    finish_s: float
    tpot_s: float
    deadline_met: bool
    preemptions: int


class ReplicaBackend(Protocol):
    """One replica's request execution, advanced lazily to a given time."""

    @property
    def now_s(self) -> float: ...

    @property
    def num_running(self) -> int: ...

    @property
    def num_waiting(self) -> int: ...

    @property
    def kv_usage_frac(self) -> float: ...

    @property
    def outstanding_tokens(self) -> int: ...

    @property
    def kv_used_tokens(self) -> int: ...

    @property
    def is_idle(self) -> bool: ...

    def submit(
        self,
        index: int,
        arrival_s: float,
        prompt_tokens: int,
        output_tokens: int,
        ttft_slo_s: float,
        tpot_slo_s: float,
    ) -> None: ...

    def run_until(self, t_s: float) -> list[Finished]: ...

    def drain(self) -> list[Finished]: ...


BackendFactory = Callable[[str], ReplicaBackend]
"""pool (tier key) -> a fresh replica backend for that pool."""


@dataclass(frozen=True, slots=True)
class Overheads:
    """Costs outside the engine step: they delay what the client sees, not the GPU.

    The same terms, with the same meaning, as the predictor's per-request model terms:
    a request reaches the scheduler `request_s(prompt)` after it arrives (HTTP,
    tokenisation), and token i (0 = first) reaches the client (i + 1) x
    `output_s_per_token` after the step that made it (detokenise, stream).
    """

    request_overhead_s: float = 0.0
    request_overhead_s_per_prompt_token: float = 0.0
    output_s_per_token: float = 0.0

    def request_s(self, prompt_tokens: int) -> float:
        return self.request_overhead_s + self.request_overhead_s_per_prompt_token * prompt_tokens

    @property
    def none(self) -> bool:
        return self == Overheads()


class EngineBackend:
    """Adapter: `tierscale_predictor.engine.Replica` seen as a `ReplicaBackend`.

    The engine refuses arrivals before its clock, and its clock may sit at the end of a
    step that straddles the arrival. Such a request is submitted at the engine's clock
    with its TTFT SLO shortened by the same amount: it is first considered at that step
    boundary either way, and every per-token deadline stays the same absolute time, so
    nothing changes but the bookkeeping (the fleet measures TTFT from the true arrival).
    """

    def __init__(
        self,
        profile: StepProfile,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        overheads: Overheads | None = None,
    ) -> None:
        self._replica = engine.Replica(
            profile, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens
        )
        self._overheads = None if overheads is None or overheads.none else overheads
        self._out_s = 0.0 if self._overheads is None else self._overheads.output_s_per_token

    @property
    def now_s(self) -> float:
        return self._replica.now_s

    @property
    def num_running(self) -> int:
        return self._replica.num_running

    @property
    def num_waiting(self) -> int:
        return self._replica.num_waiting

    @property
    def kv_usage_frac(self) -> float:
        return self._replica.kv_usage_frac

    @property
    def outstanding_tokens(self) -> int:
        return self._replica.outstanding_tokens

    @property
    def kv_used_tokens(self) -> int:
        return self._replica.kv_used_tokens

    @property
    def is_idle(self) -> bool:
        return self._replica.is_idle

    def submit(
        self,
        index: int,
        arrival_s: float,
        prompt_tokens: int,
        output_tokens: int,
        ttft_slo_s: float,
        tpot_slo_s: float,
    ) -> None:
        if self._overheads is not None:
            # The request reaches the scheduler later, and token i reaches the client
            # (i + 1) x out later than its step: the engine judges the per-token deadline
            # of the step's end, so its SLOs shrink by the same amounts (same absolute
            # deadlines for what the client sees).
            delay_s = self._overheads.request_s(prompt_tokens)
            arrival_s += delay_s
            ttft_slo_s -= delay_s + self._out_s
            tpot_slo_s -= self._out_s
        late_s = max(0.0, self._replica.now_s - arrival_s)
        self._replica.submit(
            engine.EngineRequest(
                request_id=index,
                arrival_s=arrival_s + late_s,
                prompt_tokens=prompt_tokens,
                output_tokens=output_tokens,
                ttft_slo_s=ttft_slo_s - late_s,
                tpot_slo_s=tpot_slo_s,
            )
        )

    def run_until(self, t_s: float) -> list[Finished]:
        return [_finished(t, self._out_s) for t in self._replica.run_until(t_s)]

    def drain(self) -> list[Finished]:
        return [_finished(t, self._out_s) for t in self._replica.drain()]


def _finished(t: engine.RequestTiming, out_s: float = 0.0) -> Finished:
    """The engine's timing as the client sees it (streaming delay `out_s` per token)."""
    if out_s == 0.0:
        return Finished(
            index=t.request_id,
            first_token_s=t.first_token_s,
            finish_s=t.finish_s,
            tpot_s=t.tpot_s,
            deadline_met=t.deadline_met,
            preemptions=t.preemptions,
        )
    return Finished(
        index=t.request_id,
        first_token_s=t.first_token_s + out_s,
        finish_s=t.finish_s + out_s * t.output_tokens,
        tpot_s=t.tpot_s + out_s if t.output_tokens > 1 else 0.0,
        deadline_met=t.deadline_met,
        preemptions=t.preemptions,
    )
