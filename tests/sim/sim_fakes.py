"""A hand-computable replica for fleet bookkeeping tests (no engine numbers involved).

Every request gets TTFT = `ttft_s` and TPOT = `tpot_s` regardless of load, so the expected
latencies, finish times and GPU-hours of a test are arithmetic.
"""

from __future__ import annotations

import math

from tierscale_sim.replica_port import Finished


class FixedLatencyBackend:
    def __init__(self, ttft_s: float = 0.1, tpot_s: float = 0.01, kv_tokens: int = 100_000):
        self.ttft_s = ttft_s
        self.tpot_s = tpot_s
        self.kv_tokens = kv_tokens
        self._now_s = 0.0
        self._active: list[tuple[float, int, float, int]] = []  # finish, index, arrival, tokens

    @property
    def now_s(self) -> float:
        return self._now_s

    @property
    def num_running(self) -> int:
        return len(self._active)

    @property
    def num_waiting(self) -> int:
        return 0

    @property
    def kv_usage_frac(self) -> float:
        return min(1.0, sum(a[3] for a in self._active) / self.kv_tokens)

    @property
    def outstanding_tokens(self) -> int:
        return sum(a[3] for a in self._active)

    @property
    def kv_used_tokens(self) -> int:
        return self.outstanding_tokens

    @property
    def is_idle(self) -> bool:
        return not self._active

    def submit(self, index, arrival_s, prompt_tokens, output_tokens, ttft_slo_s, tpot_slo_s):
        assert arrival_s >= self._now_s - 1e-9
        finish = arrival_s + self.ttft_s + (output_tokens - 1) * self.tpot_s
        self._active.append((finish, index, arrival_s, prompt_tokens + output_tokens))

    def run_until(self, t_s: float) -> list[Finished]:
        self._now_s = max(self._now_s, t_s)
        done = [a for a in self._active if a[0] <= t_s]
        self._active = [a for a in self._active if a[0] > t_s]
        return [self._finished(a) for a in done]

    def drain(self) -> list[Finished]:
        return self.run_until(math.inf)

    def _finished(self, a: tuple[float, int, float, int]) -> Finished:
        finish, index, arrival, _ = a
        return Finished(
            index=index,
            first_token_s=arrival + self.ttft_s,
            finish_s=finish,
            tpot_s=self.tpot_s,
            deadline_met=True,
            preemptions=0,
        )
