"""bench/saturation_fidelity.py: its lengths and its sustained/failed verdict on the engine."""

from __future__ import annotations

from bench import saturation_fidelity as sat
from tierscale_predictor import capacity, latency, loadgen, profiles


def test_lengths_are_capped_and_seeded() -> None:
    prompts, outputs = sat.lengths((8000, 1600), 500)
    again, _ = sat.lengths((8000, 1600), 500)
    assert (prompts == again).all()
    assert prompts.min() >= 1 and prompts.max() <= sat.PROMPT_MAX
    assert outputs.min() >= 1 and outputs.max() <= sat.OUTPUT_MAX


def test_a_light_load_is_sustained_and_five_times_the_bound_is_not() -> None:
    profile = profiles.load_profile("llama-3.1-8b-h100")
    model = latency.LatencyModel.from_profile(profile)
    prompts, outputs = sat.lengths((1000, 200), 600)
    bound_rps = capacity.max_rate_rps(model, sat.LOOSE, loadgen.observed_shape(prompts, outputs))
    light = sat.run(profile, 0.3 * bound_rps, prompts, outputs)
    assert sat.sustained(light), light
    assert light["preemptions_per_request"] == 0.0 and light["decode_batch"] > 0.0
    overload = sat.run(profile, 5.0 * bound_rps, prompts, outputs)
    assert not sat.sustained(overload), overload
