"""One vLLM V1 replica, iteration by iteration, driven by explicit time.

Semantics copied from vLLM V1's scheduler (interface, not code): there is no prefill or
decode phase, only computed versus known tokens. Each step walks the running requests in
admission order and gives each its missing tokens (1 for a decode, a chunk for a prefill)
within `max_num_batched_tokens`; when a request cannot get KV blocks, the newest running
request is preempted (its KV dropped, recomputed later, put back at the head of the
waiting queue). Waiting requests are admitted only in steps without preemption, while
`max_num_seqs` and the token budget allow. A request emits a token at the end of every
step after which all its known tokens are computed.

Speed: the fleet simulator drives millions of steps, so stretches in which nothing can
change the batch (all running requests decoding, nobody admissible, no arrival due) are
fast-forwarded in closed form: the batch is constant, context grows by `num_running`
tokens per step, so step times form an arithmetic progression. Such a stretch is kept
lazily, so `run_until` inside it costs O(1), and settled (O(batch)) when it ends.
Fast-forwarding never changes results beyond float rounding (a property test checks it).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tierscale_predictor.profiles import StepProfile, prefill_attention_pairs

_DEADLINE_EPS_S = 1e-9
"""Slack when judging a deadline: float rounding must not turn a met deadline into a miss."""


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """A request as the engine sees it; SLOs only score PolyServe's deadline SLO."""

    request_id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    ttft_slo_s: float = math.inf
    tpot_slo_s: float = math.inf


@dataclass(frozen=True, slots=True)
class RequestTiming:
    """What happened to one finished request (no per-token lists: 360k requests)."""

    request_id: int
    arrival_s: float
    first_scheduled_s: float
    first_token_s: float
    finish_s: float
    output_tokens: int
    preemptions: int
    deadline_met: bool
    """Every token i (0 = first) existed by arrival + ttft_slo + i * tpot_slo."""

    @property
    def queue_s(self) -> float:
        return self.first_scheduled_s - self.arrival_s

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (0 for a one-token answer)."""
        if self.output_tokens <= 1:
            return 0.0
        return (self.finish_s - self.first_token_s) / (self.output_tokens - 1)

    @property
    def e2e_s(self) -> float:
        return self.finish_s - self.arrival_s


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One executed step, as a profiler would log it (for fitting tests)."""

    prefill_tokens: int
    decode_seqs: int
    context_tokens: int
    step_s: float
    attention_pairs: int = 0
    """(query, key) pairs of the step's prefill chunks."""


class _Seq:
    """Mutable per-request engine state."""

    __slots__ = (
        "req",
        "prompt",
        "output",
        "generated",
        "computed",
        "blocks",
        "first_scheduled_s",
        "first_token_s",
        "preemptions",
        "worst_late_s",
        "track_deadline",
        "first_extra_s",
        "token_extra_s",
    )

    def __init__(self, req: EngineRequest, first_extra_s: float, token_extra_s: float) -> None:
        self.req = req
        self.prompt = req.prompt_tokens
        self.output = req.output_tokens
        self.generated = 0
        self.computed = 0
        self.blocks = 0
        self.first_scheduled_s = -1.0
        self.first_token_s = -1.0
        self.preemptions = 0
        self.worst_late_s = -math.inf
        self.track_deadline = math.isfinite(req.ttft_slo_s) and math.isfinite(req.tpot_slo_s)
        self.first_extra_s = first_extra_s
        """Delay of the first token's delivery after the step that made it."""
        self.token_extra_s = token_extra_s
        """Extra delay per output token (token i is delivered first_extra + i * this later)."""

    def late_s(self, token_index: int, at_s: float) -> float:
        """Lateness of token `token_index` made by a step ending at `at_s` (as delivered)."""
        req = self.req
        delivered = at_s + self.first_extra_s + token_index * self.token_extra_s
        return delivered - (req.arrival_s + req.ttft_slo_s + token_index * req.tpot_slo_s)

    def timing(self, finish_s: float) -> RequestTiming:
        extra = self.first_extra_s
        return RequestTiming(
            request_id=self.req.request_id,
            arrival_s=self.req.arrival_s,
            first_scheduled_s=self.first_scheduled_s,
            first_token_s=self.first_token_s + extra,
            finish_s=finish_s + extra + (self.output - 1) * self.token_extra_s,
            output_tokens=self.output,
            preemptions=self.preemptions,
            deadline_met=(not self.track_deadline) or self.worst_late_s <= _DEADLINE_EPS_S,
        )


class _Stretch:
    """A decode-only stretch kept lazily: step m starts at t0 + m*s0 + slope*m*(m-1)/2."""

    __slots__ = ("t0_s", "s0_s", "slope_s", "max_steps", "done", "next_start_s")

    def __init__(self, t0_s: float, s0_s: float, slope_s: float, max_steps: int) -> None:
        self.t0_s = t0_s
        self.s0_s = s0_s
        self.slope_s = slope_s
        self.max_steps = max_steps
        self.done = 0
        self.next_start_s = t0_s
        """Start of step `done` (the first one not executed yet)."""

    def elapsed_s(self, steps: int) -> float:
        return steps * self.s0_s + self.slope_s * steps * (steps - 1) * 0.5

    def advance_to(self, limit_s: float) -> None:
        """Count every step that starts before `limit_s` as executed (up to max_steps)."""
        # Usually only a step or two: walk them; far jumps solve the quadratic.
        done = self.done
        t0, s0, slope = self.t0_s, self.s0_s, self.slope_s
        for _ in range(4):
            if done >= self.max_steps:
                break
            done += 1
            start = t0 + done * s0 + slope * done * (done - 1) * 0.5
            if start >= limit_s:
                self.done, self.next_start_s = done, start
                return
        if done < self.max_steps:
            done = max(done, self.steps_starting_before(limit_s))
        self.done = done
        self.next_start_s = t0 + self.elapsed_s(done)

    def steps_starting_before(self, limit_s: float) -> int:
        """How many steps of the stretch start strictly before `limit_s` (capped)."""
        if math.isinf(limit_s):
            return self.max_steps
        x = limit_s - self.t0_s
        if x <= 0.0:
            return 0
        if self.slope_s <= 0.0:
            n = math.ceil(x / self.s0_s)
        else:
            half = 0.5 * self.slope_s
            lin = self.s0_s - half
            n = math.ceil((-lin + math.sqrt(lin * lin + 4.0 * half * x)) / (2.0 * half))
        n = max(n, 0)
        # n steps start before x iff the start of step n-1 < x <= start of step n.
        while n > 0 and self.elapsed_s(n - 1) >= x:
            n -= 1
        while self.elapsed_s(n) < x:
            n += 1
        return min(n, self.max_steps)


class Replica:
    """One vLLM engine. Deterministic; time only through arguments (no clock)."""

    def __init__(
        self,
        profile: StepProfile,
        *,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        record_steps: bool = False,
        fast_forward: bool = True,
    ) -> None:
        self.profile = profile
        self.max_num_seqs = profile.max_num_seqs if max_num_seqs is None else max_num_seqs
        self.max_num_batched_tokens = (
            profile.max_num_batched_tokens
            if max_num_batched_tokens is None
            else max_num_batched_tokens
        )
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1:
            raise ValueError("max_num_seqs and max_num_batched_tokens must be >= 1")
        self._block = profile.block_size_tokens
        self._first_extra_s = profile.first_token_overhead_s + profile.output_s_per_token
        self._token_extra_s = profile.output_s_per_token
        self._has_attention = profile.attention_s_per_token_pair > 0.0
        self._capacity_blocks = profile.kv_capacity_blocks
        self._free_blocks = self._capacity_blocks
        self._now_s = 0.0
        self._driven_to_s = 0.0  # largest horizon run_until was asked for
        self._outstanding = 0  # output tokens not generated yet, all requests
        self._pending: list[tuple[float, int, EngineRequest]] = []  # heap: (arrival, seq, req)
        self._pending_seq = 0
        self._waiting: deque[_Seq] = deque()
        self._running: list[_Seq] = []
        self._stretch: _Stretch | None = None
        self._fast_forward = fast_forward
        self._finished: list[RequestTiming] = []
        self.steps_executed = 0
        """Engine steps executed so far (fast-forwarded ones included)."""
        self.step_records: list[StepRecord] | None = [] if record_steps else None
        if record_steps:
            self._fast_forward = False  # every step must be seen to be recorded

    # ---- read-only state -------------------------------------------------------------
    @property
    def now_s(self) -> float:
        if self._stretch is not None:
            return self._stretch.next_start_s
        return self._now_s

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        """Requests that arrived (by now_s) and wait for admission or re-admission."""
        now = self.now_s
        return len(self._waiting) + sum(1 for a, _, _ in self._pending if a <= now)

    @property
    def kv_used_blocks(self) -> int:
        if self._stretch is None or self._stretch.done == 0:
            return self._capacity_blocks - self._free_blocks
        done = self._stretch.done
        b = self._block
        return sum(-(-(s.computed + done) // b) for s in self._running)

    @property
    def kv_used_tokens(self) -> int:
        """KV tokens held by running requests (computed tokens)."""
        done = 0 if self._stretch is None else self._stretch.done
        return sum(s.computed for s in self._running) + done * len(self._running)

    @property
    def kv_usage_frac(self) -> float:
        """Used KV blocks / all blocks, as vllm:kv_cache_usage_perc reports it."""
        return self.kv_used_blocks / self._capacity_blocks

    @property
    def outstanding_tokens(self) -> int:
        """Output tokens still to generate by every admitted or queued request (routing)."""
        done = 0 if self._stretch is None else self._stretch.done
        return self._outstanding - done * len(self._running)

    @property
    def next_arrival_s(self) -> float:
        """When the earliest submitted request not yet in the engine reaches the scheduler
        (its arrival plus the request overhead); inf if none."""
        return self._pending[0][0] if self._pending else math.inf

    @property
    def is_idle(self) -> bool:
        return not self._running and not self._waiting and not self._pending

    # ---- driving ---------------------------------------------------------------------
    def submit(self, request: EngineRequest) -> None:
        """Queue a request; it is considered at the first step boundary >= its arrival.

        The arrival may lie inside the step that straddles the last `run_until` horizon
        (`now_s` is then past it): the request waits for that step's end, as in vLLM.
        Arrivals before the horizon the replica was already driven to are refused.
        """
        if request.arrival_s < self._driven_to_s - 1e-12:
            raise ValueError(
                f"request {request.request_id}: arrival_s {request.arrival_s} is before "
                f"{self._driven_to_s}, the time this replica was already run to"
            )
        if request.prompt_tokens < 1 or request.output_tokens < 1:
            raise ValueError(
                f"request {request.request_id}: prompt_tokens and output_tokens must be >= 1"
            )
        if request.prompt_tokens + request.output_tokens > self.profile.kv_capacity_tokens:
            raise ValueError(
                f"request {request.request_id}: {request.prompt_tokens}+"
                f"{request.output_tokens} tokens exceed the KV capacity "
                f"{self.profile.kv_capacity_tokens}"
            )
        # HTTP, tokenisation and the hand-over to the engine delay when it is schedulable.
        ready_s = request.arrival_s + self.profile.request_overhead_for(request.prompt_tokens)
        heapq.heappush(self._pending, (ready_s, self._pending_seq, request))
        self._pending_seq += 1
        self._outstanding += request.output_tokens

    def run_until(self, t_s: float) -> list[RequestTiming]:
        """Execute every step that starts before `t_s`; return requests that finished.

        A step may end after `t_s`; an idle replica jumps to `t_s`.
        """
        st = self._stretch
        if st is not None and t_s <= st.next_start_s and not self._pending:
            # Inside a running step of a decode stretch: nothing starts before t_s.
            if t_s > self._driven_to_s:
                self._driven_to_s = t_s
            return []
        self._run(t_s, jump_when_idle=True)
        if t_s > self._driven_to_s:
            self._driven_to_s = t_s
        out, self._finished = self._finished, []
        return out

    def drain(self) -> list[RequestTiming]:
        """Run until every submitted request has finished (the clock stops at the last)."""
        self._run(math.inf, jump_when_idle=False)
        self._driven_to_s = max(self._driven_to_s, self._now_s)
        out, self._finished = self._finished, []
        return out

    # ---- internals -------------------------------------------------------------------
    def _run(self, t_s: float, *, jump_when_idle: bool) -> None:
        while True:
            if self._stretch is not None:
                if not self._advance_stretch(t_s):
                    return
                continue
            now = self._now_s
            self._admit_arrivals(now)
            if not self._running and not self._waiting:
                if self._pending and self._pending[0][0] < t_s:
                    self._now_s = max(now, self._pending[0][0])
                    continue
                if jump_when_idle:
                    self._now_s = max(now, t_s)
                return
            if now >= t_s:
                return
            if not (self._fast_forward and self._try_start_stretch()):
                self._step()

    def _admit_arrivals(self, now_s: float) -> None:
        pending = self._pending
        while pending and pending[0][0] <= now_s:
            _, _, req = heapq.heappop(pending)
            self._waiting.append(_Seq(req, self._first_extra_s, self._token_extra_s))

    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self._block)

    def _preempt_newest(self) -> _Seq:
        victim = self._running.pop()
        self._free_blocks += victim.blocks
        victim.blocks = 0
        victim.computed = 0
        victim.preemptions += 1
        self._waiting.appendleft(victim)
        return victim

    def _step(self) -> None:
        """One scheduler iteration + its execution (the general, exact path)."""
        budget = self.max_num_batched_tokens
        scheduled: list[tuple[_Seq, int]] = []
        preempted = False
        running = self._running
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            n = min(seq.prompt + seq.generated - seq.computed, budget)
            need = self._blocks_for(seq.computed + n) - seq.blocks
            victim: _Seq | None = None
            while need > self._free_blocks:
                victim = self._preempt_newest()
                preempted = True
                if victim is seq:
                    break
            if victim is seq:
                break
            self._free_blocks -= need
            seq.blocks += need
            scheduled.append((seq, n))
            budget -= n
            i += 1
        if not preempted:
            waiting = self._waiting
            while waiting and budget > 0 and len(running) < self.max_num_seqs:
                seq = waiting[0]
                n = min(seq.prompt + seq.generated - seq.computed, budget)
                need = self._blocks_for(seq.computed + n) - seq.blocks
                if need > self._free_blocks:
                    break
                waiting.popleft()
                self._free_blocks -= need
                seq.blocks += need
                running.append(seq)
                scheduled.append((seq, n))
                budget -= n
        if not scheduled:
            # Nothing fits (cannot happen with a request that fits the KV alone); move on.
            raise RuntimeError("engine made no progress: KV capacity too small for a request")
        self._execute(scheduled)

    def _execute(self, scheduled: list[tuple[_Seq, int]]) -> None:
        start = self._now_s
        prefill = 0
        decodes = 0
        context = 0
        pairs = 0
        record = self.step_records is not None
        for seq, n in scheduled:
            if seq.first_scheduled_s < 0.0:
                seq.first_scheduled_s = start
            if n == 1 and seq.generated > 0 and seq.computed == seq.prompt + seq.generated - 1:
                decodes += 1
            else:
                prefill += n
                if self._has_attention or record:
                    pairs += prefill_attention_pairs(seq.computed, n)
            context += seq.computed + n
        step = self.profile.step_s(prefill, decodes, context, pairs)
        end = start + step
        self._now_s = end
        self.steps_executed += 1
        if self.step_records is not None:
            self.step_records.append(StepRecord(prefill, decodes, context, step, pairs))
        self._emit(scheduled, end)

    def _emit(self, scheduled: list[tuple[_Seq, int]], end: float) -> None:
        """Account the step's computed tokens; a request whose known tokens are all
        computed emits one."""
        finished = False
        for seq, n in scheduled:
            seq.computed += n
            if seq.computed == seq.prompt + seq.generated:
                seq.generated += 1
                self._outstanding -= 1
                if seq.first_token_s < 0.0:
                    seq.first_token_s = end
                if seq.track_deadline:
                    late = seq.late_s(seq.generated - 1, end)
                    if late > seq.worst_late_s:
                        seq.worst_late_s = late
                if seq.generated >= seq.output:
                    finished = True
        if finished:
            self._retire(end)

    def _retire(self, end_s: float) -> None:
        keep: list[_Seq] = []
        for seq in self._running:
            if seq.generated >= seq.output:
                self._free_blocks += seq.blocks
                seq.blocks = 0
                self._finished.append(seq.timing(end_s))
            else:
                keep.append(seq)
        self._running = keep

    def _try_start_stretch(self) -> bool:
        """Start a lazy decode-only stretch if nothing can change the batch for >= 2 steps."""
        running = self._running
        d = len(running)
        if d == 0 or d > self.max_num_batched_tokens:
            return False
        context = 0
        steps_to_finish = 1 << 62
        for seq in running:
            if seq.generated == 0 or seq.computed != seq.prompt + seq.generated - 1:
                return False
            context += seq.computed + 1
            left = seq.output - seq.generated
            if left < steps_to_finish:
                steps_to_finish = left
        if self._waiting and self._head_admissible(d):
            return False
        # KV: over j steps each request needs at most ceil(j/16) new blocks.
        kv_steps = self._block * (self._free_blocks // d)
        max_steps = min(steps_to_finish, kv_steps)
        if max_steps < 2:
            return False
        profile = self.profile
        s0 = profile.step_s(0, d, context)
        self._stretch = _Stretch(self._now_s, s0, profile.context_s_per_token * d, max_steps)
        return True

    def _head_admissible(self, running_after: int) -> bool:
        """Would the head of the waiting queue be admitted in a decode-only step?"""
        if len(self._running) >= self.max_num_seqs:
            return False
        budget = self.max_num_batched_tokens - running_after
        if budget <= 0:
            return False
        seq = self._waiting[0]
        n = min(seq.prompt + seq.generated - seq.computed, budget)
        # Decodes of the coming steps take blocks first; being conservative here only
        # means not fast-forwarding, never a different result.
        return self._blocks_for(seq.computed + n) - seq.blocks <= self._free_blocks

    def _advance_stretch(self, t_s: float) -> bool:
        """Advance the lazy stretch towards `t_s`; True if it was settled (keep looping)."""
        st = self._stretch
        assert st is not None
        arrival_due = bool(self._pending) and self._pending[0][0] < t_s
        limit = self._pending[0][0] if arrival_due else t_s
        if limit > st.next_start_s:  # else no further step starts before the limit
            st.advance_to(limit)
        if st.done >= st.max_steps or arrival_due:
            self._settle()
            return True
        return False

    def _settle(self) -> None:
        """Apply the stretch's steps to every running request and end the stretch."""
        st = self._stretch
        assert st is not None
        self._stretch = None
        j = st.done
        end = st.t0_s + st.elapsed_s(j)
        self._now_s = end
        if j == 0:
            return
        self.steps_executed += j
        self._outstanding -= j * len(self._running)
        first_end = st.t0_s + st.s0_s
        b = self._block
        used = 0
        finished = False
        for seq in self._running:
            g0 = seq.generated
            seq.computed += j
            seq.generated = g0 + j
            seq.blocks = -(-seq.computed // b)
            used += seq.blocks
            if seq.track_deadline:
                # Lateness is convex in the token index (step times grow): check the ends.
                late = max(seq.late_s(g0, first_end), seq.late_s(g0 + j - 1, end))
                if late > seq.worst_late_s:
                    seq.worst_late_s = late
            if seq.generated >= seq.output:
                finished = True
        self._free_blocks = self._capacity_blocks - used
        if finished:
            self._retire(end)


def simulate(
    profile: StepProfile,
    requests: Sequence[EngineRequest],
    **engine_kwargs: Any,
) -> list[RequestTiming]:
    """Feed `requests` to one fresh replica and run it dry; timings in finishing order."""
    replica = Replica(profile, **engine_kwargs)
    for request in sorted(requests, key=lambda r: r.arrival_s):
        replica.submit(request)
    return replica.drain()
