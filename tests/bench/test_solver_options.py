"""The planner's HiGHS options change how fast its MILPs solve, never their optima."""

from __future__ import annotations

import pytest

from bench import solver_options
from tierscale.policy import allocation


@pytest.fixture(scope="module")
def milps() -> list[solver_options.Milp]:
    # Budget-limited plans at 10 tiers: the "everything served" attempts, the levels'
    # unserved optima and the final minimum-GPU solves.
    return solver_options.collect([10], 12)


def test_the_plans_solve_milps_of_every_kind(milps: list[solver_options.Milp]) -> None:
    pools = int(milps[0].integrality.sum())
    gpu_objectives = [m for m in milps if m.cost[:pools].any()]
    unserved_objectives = [m for m in milps if m.cost.any() and not m.cost[:pools].any()]
    assert gpu_objectives and unserved_objectives


@pytest.mark.parametrize("name", list(solver_options.OPTION_SETS)[1:])
def test_every_option_set_reaches_the_planners_optima(
    milps: list[solver_options.Milp], name: str
) -> None:
    _, planner = solver_options.solve_all(milps, allocation._MIP_OPTIONS)
    _, other = solver_options.solve_all(milps, solver_options.OPTION_SETS[name])
    assert [solver_options._differs(a, b) for a, b in zip(planner, other, strict=True)] == [
        False
    ] * len(milps)


def test_an_optimum_off_by_more_than_the_tolerance_differs() -> None:
    assert solver_options._differs(10.0, 10.0 + 2e-5)
    assert not solver_options._differs(10.0, 10.0 + 5e-6)
    assert solver_options._differs(None, 1.0)
    assert not solver_options._differs(None, None)
