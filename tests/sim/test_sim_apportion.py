"""How the static baseline and the oracle size fixed fleets: budget sharing, refinement."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from tierscale_sim import runner
from tierscale_sim.apportion import share_budget
from tierscale_sim.scoring import RunScore, TierScore

from tierscale.domain.tiers import Pool, Slo, Tier


def test_an_unbinding_budget_changes_nothing() -> None:
    counts = {"a": 3, "b": 4}
    assert share_budget(counts, {"a": 2.5, "b": 3.2}, {"a": 1, "b": 1}, 10) == counts
    assert share_budget(counts, {"a": 2.5, "b": 3.2}, {"a": 1, "b": 1}, None) == counts


def test_the_budget_goes_to_the_largest_fractions_of_need() -> None:
    # S2 at 0.9 of optimal: needs 2.57, 4.27, 5.26, 6.86 replicas, 20 GPUs.
    need = {"t20": 2.57, "t30": 4.27, "t50": 5.26, "t100": 6.86}
    counts = {"t20": 3, "t30": 5, "t50": 6, "t100": 7}
    floors = dict.fromkeys(need, 1)
    assert share_budget(counts, need, floors, 20) == {"t20": 3, "t30": 5, "t50": 5, "t100": 7}


@given(
    st.lists(st.floats(0.0, 30.0), min_size=1, max_size=6),
    st.integers(1, 60),
)
def test_the_share_fits_the_budget_and_never_exceeds_the_need(
    needs: list[float], budget: int
) -> None:
    need = {f"t{i}": n for i, n in enumerate(needs)}
    floors = {k: 1 for k in need}
    counts = {k: max(1, -int(-n // 1)) for k, n in need.items()}
    out = share_budget(counts, need, floors, budget)
    assert all(floors[k] <= out[k] <= counts[k] for k in need)
    if sum(counts.values()) > budget:
        assert sum(out.values()) == max(budget, sum(floors.values()))
    else:
        assert out == counts


def _score(attainment_by_tier: dict[str, float]) -> RunScore:
    tiers = {
        k: TierScore(k, 100, 0, a, 0.9, None, None, None, None, None, None)
        for k, a in attainment_by_tier.items()
    }
    return RunScore("static", 0, 1.0, tiers, 400, 0, 0.8, 1.0, 1.0, 1.0, 0, 0, 0, 0.0)


def _setup_tiers(names: list[str]) -> SimpleNamespace:
    tiers = [
        Tier(n, "default", "m", Slo(1.0, 0.1), Pool(f"vllm-{n}", min_replicas=1)) for n in names
    ]
    return SimpleNamespace(tiers=tiers)


def test_static_refinement_moves_a_replica_from_the_most_slack_to_the_neediest_tier() -> None:
    setup = _setup_tiers(["a", "b", "c"])
    keys = [t.key for t in setup.tiers]
    counts = dict(zip(keys, [3, 5, 1], strict=True))
    score = _score(dict(zip(keys, [0.99, 0.95, 0.40], strict=True)))
    moved = runner._moved_replica(setup, score, counts)  # type: ignore[arg-type]
    assert moved == dict(zip(keys, [2, 5, 2], strict=True))


def test_static_refinement_stops_when_every_tier_meets_or_no_donor_is_left() -> None:
    setup = _setup_tiers(["a", "b"])
    keys = [t.key for t in setup.tiers]
    met = _score(dict(zip(keys, [0.95, 0.91], strict=True)))
    assert runner._moved_replica(setup, met, dict(zip(keys, [2, 2], strict=True))) is None  # type: ignore[arg-type]
    short = _score(dict(zip(keys, [0.99, 0.5], strict=True)))
    assert runner._moved_replica(setup, short, dict(zip(keys, [1, 4], strict=True))) is None  # type: ignore[arg-type]
