"""`bench/plan_breakdown.py`: every step timed while inside, nothing left wrapped after."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from bench.plan_breakdown import STEPS, wrapped
from bench.plan_latency import measure
from tierscale.policy import allocation
from tierscale_predictor import latency, profiles


def test_each_plan_passes_every_step_and_the_wrappers_come_off() -> None:
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    originals = {label: getattr(module, name) for label, (module, name) in STEPS.items()}
    solve = allocation._solve
    totals: defaultdict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    with wrapped(totals, counts):
        served, limited = measure(10, 3, model, time.process_time)
    plans = len(served) + len(limited)
    assert plans == 3
    assert counts["observe (lengths, breaches, forecast)"] == plans
    assert counts["explain (messages, engine advice)"] == 10 * plans  # once per tier
    assert counts["solve: routing (LP)"] == plans
    assert all(totals[label] >= 0.0 for label in counts)
    assert not any(k.startswith("solve: _") for k in counts), counts  # every kind named
    assert {label: getattr(module, name) for label, (module, name) in STEPS.items()} == originals
    assert allocation._solve is solve
