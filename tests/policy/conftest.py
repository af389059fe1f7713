"""Planner test fixtures: the bundled H100 latency model."""

from __future__ import annotations

import pytest

from tierscale_predictor import latency, profiles


@pytest.fixture(scope="session")
def h100() -> latency.LatencyModel:
    return latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
