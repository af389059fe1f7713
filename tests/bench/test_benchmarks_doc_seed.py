"""The generalisation section says whether its generator seed was untouched."""

from __future__ import annotations

import pytest

from bench import benchmarks_doc


def test_a_fresh_seed_is_called_untouched() -> None:
    text = benchmarks_doc.seed_provenance(20261203)
    assert text.startswith("Generator seed 20261203 was never used while")


@pytest.mark.parametrize("seed", benchmarks_doc.DEVELOPMENT_SEEDS)
def test_a_development_seed_is_never_called_untouched(seed: int) -> None:
    # The report ran on 20261130 after planner rules were found on it; with GEN_SEED set
    # to a development seed the page must not claim nobody tuned for it.
    text = benchmarks_doc.seed_provenance(seed)
    assert "never used" not in text
    assert f"Generator seed {seed} was used while developing" in text
