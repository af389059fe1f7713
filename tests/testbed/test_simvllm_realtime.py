"""The engine model against a fake clock: tokens leave when the engine made them."""

from __future__ import annotations

import pytest
from tierscale_testbed.simvllm import metrics, realtime

from tierscale_predictor import engine, profiles


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 100.0

    def __call__(self) -> float:
        return self.t_s


def _engine(clock: FakeClock) -> tuple[realtime.RealtimeEngine, metrics.VllmMetrics]:
    profile = profiles.load_profile("llama-3.1-8b-h100")
    m = metrics.VllmMetrics(model_name="m")
    return realtime.RealtimeEngine(engine.Replica(profile), m, clock=clock), m


def _run(rt: realtime.RealtimeEngine, clock: FakeClock, until_s: float, dt_s: float) -> None:
    while clock.t_s - 100.0 < until_s:
        rt.step(rt.now_s())
        clock.t_s += dt_s


def test_forecast_matches_what_the_engine_model_computes_offline() -> None:
    clock = FakeClock()
    rt, _ = _engine(clock)
    a = rt.submit(prompt_tokens=1000, output_tokens=40)
    clock.t_s += 0.013
    b = rt.submit(prompt_tokens=3000, output_tokens=10)
    _run(rt, clock, 5.0, 0.01)
    offline = engine.simulate(
        profiles.load_profile("llama-3.1-8b-h100"),
        [
            engine.EngineRequest(0, 0.0, 1000, 40),
            engine.EngineRequest(1, 0.013, 3000, 10),
        ],
    )
    by_id = {t.request_id: t for t in offline}
    for flight in (a, b):
        assert flight.timing is not None
        assert flight.schedule_s is not None
        truth = by_id[flight.request_id]
        assert flight.timing.first_token_s == pytest.approx(truth.first_token_s)
        assert flight.schedule_s[0] == pytest.approx(truth.first_token_s)
        assert flight.schedule_s[-1] == pytest.approx(truth.finish_s)
    assert rt.num_in_flight == 0


def test_server_ttft_counts_time_from_the_real_arrival() -> None:
    clock = FakeClock()
    rt, m = _engine(clock)
    rt.submit(prompt_tokens=8000, output_tokens=2)
    # Arrive once the long prompt has reached the scheduler (the profile charges 0.23 ms +
    # 1.75 us per prompt token before it, ~14 ms here) and its prefill step runs.
    clock.t_s += 0.02
    late = rt.submit(prompt_tokens=500, output_tokens=2)
    _run(rt, clock, 3.0, 0.005)
    assert late.timing is not None
    hist = m.histograms[metrics.TTFT]
    assert hist.count == 2
    # The second request waited for the first one's prefill step: its TTFT includes that.
    assert late.timing.first_token_s - late.arrival_s > 0.05


def test_metrics_count_tokens_and_finish_only_after_the_last_token() -> None:
    clock = FakeClock()
    rt, m = _engine(clock)
    flight = rt.submit(prompt_tokens=100, output_tokens=20)
    rt.step(rt.now_s())
    assert flight.schedule_s is not None
    clock.t_s = 100.0 + flight.schedule_s[4] + 1e-9  # float: (100 + x) - 100 may be < x
    rt.step(rt.now_s())
    assert m.counters[metrics.GENERATION_TOKENS] == 5
    assert m.histograms[metrics.E2E].count == 0
    assert m.gauges.running == 1
    clock.t_s = 100.0 + flight.schedule_s[-1] + 1.0
    rt.step(rt.now_s())
    assert m.counters[metrics.GENERATION_TOKENS] == 20
    assert m.histograms[metrics.ITL].count == 19
    assert m.histograms[metrics.E2E].count == 1
    assert m.success_by_reason["length"] == 1
    assert m.gauges.running == 0


def test_an_oversized_request_is_refused() -> None:
    rt, _ = _engine(FakeClock())
    with pytest.raises(ValueError):
        rt.submit(prompt_tokens=10**8, output_tokens=1)
