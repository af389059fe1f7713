"""A pool's real batch limit, read from its queue (`policy/batch_limit.py`).

Found by the generalisation report: gen-s20261130-008's engine ran with
`--max-num-seqs 32` where the model assumed 1024; its standard pool, one replica
running 32 requests with 10-29 waiting and the KV cache 5 % full, was planned at 15-16
req/s per replica, and only breaches (the bias, at most x2) moved it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tierscale.domain.observations import TierObservation
from tierscale.policy import planner
from tierscale_predictor import latency

from .builders import make_tier, observations, observe

STANDARD = make_tier("standard", 5.0, 0.15, priority=20, min_replicas=1)
NOW_S = 1000.0


def _saturated(
    running: float = 32.0,
    waiting: float = 12.0,
    kv: float = 0.05,
    ready: int = 1,
    prompt: float = 220.0,
    rate_rps: float = 7.0,
    ttft_s: float = 8.0,
) -> TierObservation:
    return replace(
        observe(
            STANDARD,
            rate_rps,
            current=ready,
            prompt=prompt,
            output=740.0,
            now_s=NOW_S,
            ttft_s=ttft_s,
        ),
        running_requests=running,
        waiting_requests=waiting,
        kv_usage_frac=kv,
    )


def _plan(
    obs: TierObservation,
    h100: latency.LatencyModel,
    state: planner.PlannerState | None = None,
    *,
    learn: bool = True,
) -> planner.Plan:
    return planner.plan(
        tiers=[STANDARD],
        observations=observations(obs),
        model=h100,
        now_s=NOW_S,
        state=state,
        config=planner.PlannerConfig(learn_batch_limit=learn),
    )


def _twice(obs: TierObservation, h100: latency.LatencyModel) -> planner.Plan:
    """Two decisions in a row on the same reading: a plateau, then its confirmation."""
    return _plan(obs, h100, _plan(obs, h100).state)


def test_a_queue_held_at_a_few_running_per_replica_teaches_the_batch_limit(
    h100: latency.LatencyModel,
) -> None:
    assert h100.max_num_seqs == 1024
    first = _plan(_saturated(rate_rps=12.0), h100)
    # One reading is a plateau to confirm (a burst fills a queue for a moment)...
    assert first.state.batch_limit_by_tier == {}
    assert first.state.queue_plateau_by_tier == {STANDARD.key: 32.0}
    # ...the next decision's at the same level confirms it.
    learned = _plan(_saturated(rate_rps=12.0, running=31.0), h100, first.state)
    assert learned.state.batch_limit_by_tier == {STANDARD.key: 32}
    assumed = _plan(_saturated(rate_rps=12.0, running=31.0), h100, first.state, learn=False)
    ours, theirs = learned.decisions[STANDARD.key], assumed.decisions[STANDARD.key]
    # The engine at 32 sequences serves far less per replica than at 1024.
    assert ours.capacity_rps_per_replica < 0.5 * theirs.capacity_rps_per_replica
    assert ours.desired_replicas > theirs.desired_replicas
    assert "at most 32 requests running per replica" in ours.message
    assert "the model assumed 1024" in ours.message
    # The advice names the flag that would serve more per replica.
    assert ours.engine_advice is not None and "--max-num-seqs" in ours.engine_advice


def test_a_queue_at_another_level_next_time_is_a_burst_not_a_limit(
    h100: latency.LatencyModel,
) -> None:
    first = _plan(_saturated(running=32.0), h100)
    moved = _plan(_saturated(running=12.0, waiting=6.0), h100, first.state)
    assert moved.state.batch_limit_by_tier == {}
    assert moved.state.queue_plateau_by_tier == {STANDARD.key: 12.0}
    drained = _plan(_saturated(running=12.0, waiting=0.0), h100, moved.state)
    assert drained.state.batch_limit_by_tier == {}
    assert drained.state.queue_plateau_by_tier == {}


@pytest.mark.parametrize(
    "evidence",
    [
        {"waiting": 3.0},  # 3 waiting beside 32 running: arrival noise, not a queue
        {"running": 3.0, "waiting": 1.0},  # one waiting for the next step beside 3
        {"kv": 0.85},  # the KV cache may be what holds the batch
        {"prompt": 4000.0},  # a long prefill may be what holds the queue
        {"running": 600.0, "waiting": 200.0},  # above half the model's limit: no evidence
        {"running": 64.0, "waiting": 3.0, "ready": 2},  # fewer than two waiting per replica
    ],
)
def test_no_batch_limit_is_learned_without_a_queue_only_the_limit_explains(
    h100: latency.LatencyModel, evidence: dict[str, float]
) -> None:
    obs = _saturated(**evidence)  # type: ignore[arg-type]
    assert _twice(obs, h100).state.batch_limit_by_tier == {}


def test_a_new_replica_in_its_first_minute_teaches_nothing(h100: latency.LatencyModel) -> None:
    # A replica that just became Ready runs few requests while the others are full.
    obs = replace(_saturated(running=40.0, ready=2), newest_ready_at_s=NOW_S - 20.0)
    assert _twice(obs, h100).state.batch_limit_by_tier == {}


def test_a_learned_limit_only_rises(h100: latency.LatencyModel) -> None:
    first = _twice(_saturated(running=32.0), h100)
    assert first.state.batch_limit_by_tier == {STANDARD.key: 32}
    # A later queue at fewer running (a long prompt in prefill, say) does not lower it...
    lower = _plan(_saturated(running=20.0, waiting=20.0), h100, first.state)
    lower = _plan(_saturated(running=20.0, waiting=20.0), h100, lower.state)
    assert lower.state.batch_limit_by_tier == {STANDARD.key: 32}
    # ...more running per replica than it allows raises it, queue or not...
    busier = _plan(_saturated(running=90.0, waiting=0.0, ready=2), h100, lower.state)
    assert busier.state.batch_limit_by_tier == {STANDARD.key: 45}
    # ...and missing gauges keep what was learned.
    blind = _plan(replace(_saturated(), running_requests=None), h100, busier.state)
    assert blind.state.batch_limit_by_tier == {STANDARD.key: 45}


def test_a_limit_that_barely_moves_capacity_is_remembered_not_planned_with(
    h100: latency.LatencyModel,
) -> None:
    # gen-s7-019: a batch pool learned its true 128 where the model allowed ~400; its
    # capacity fell 2 %, and under a 6-GPU budget that reshuffle cost a chat tier 18
    # points. A limit is planned with only where it lowers capacity by more than 10 %.
    obs = _saturated(running=180.0, waiting=60.0, rate_rps=12.0)
    learned = _twice(obs, h100)
    assert learned.state.batch_limit_by_tier == {STANDARD.key: 180}
    assumed = _plan(obs, h100, _plan(obs, h100, learn=False).state, learn=False)
    ours, theirs = learned.decisions[STANDARD.key], assumed.decisions[STANDARD.key]
    assert ours.capacity_rps_per_replica == theirs.capacity_rps_per_replica
    assert "requests running per replica" not in ours.message
