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
    ) -> None:
        self._replica = engine.Replica(
            profile, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens
        )

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
        return [_finished(t) for t in self._replica.run_until(t_s)]

    def drain(self) -> list[Finished]:
        return [_finished(t) for t in self._replica.drain()]


def _finished(t: engine.RequestTiming) -> Finished:
    return Finished(
        index=t.request_id,
        first_token_s=t.first_token_s,
        finish_s=t.finish_s,
        tpot_s=t.tpot_s,
        deadline_met=t.deadline_met,
        preemptions=t.preemptions,
    )
