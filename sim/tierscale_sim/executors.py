"""Fan benchmark runs out over processes on this machine, or over a Ray cluster.

A run (one policy at one seed and load of one scenario) depends only on its inputs: the
workload, the routers and every policy are seeded from (seed, load), and nothing is
shared between runs but the engine-validated capacities, which are deterministic and
measured once per scenario before the runs start. So the runs can go anywhere, in any
order, and the results (collected in task order) are identical to a serial run
(`tests/sim/test_sim_executors.py` checks it).

Executors: `serial` (in this process), `process` (`concurrent.futures`, one process per
core by default) and `ray` (the optional `ray` extra: `pip install 'tierscale-sim[ray]'`;
a local Ray, or an existing cluster by address) for sweeps bigger than one machine. No
home-made distribution: the cluster engine schedules, retries and moves the data.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Final

from tierscale_sim import runner
from tierscale_sim.runner import PolicyRun, Setup

EXECUTORS: Final = ("serial", "process", "ray")

CAPACITY_POLICIES: Final = frozenset({"oracle", "static"})
"""Policies whose hindsight search needs the engine-validated capacities."""


class ExecutorError(RuntimeError):
    """The chosen executor cannot run (e.g. Ray is not installed); the message says how."""


@dataclass(frozen=True, slots=True)
class Task:
    """One run: a policy at one seed and load multiplier of one scenario."""

    setup: int
    """Index of the scenario in the list of setups."""
    policy: str
    seed: int
    multiplier: float = 1.0
    keep_going: bool = False
    """A run that raises becomes a `Failed` result instead of stopping every run (a
    benchmark of many scenarios keeps the others); off, the error propagates."""


@dataclass(frozen=True, slots=True)
class Failed:
    """A run that raised (only with `Task.keep_going`): what and where."""

    task: Task
    error: str
    """The traceback, as Python printed it."""


Outcome = PolicyRun | Failed


@dataclass(frozen=True, slots=True)
class Done:
    """A finished run, as the progress callback sees it."""

    task: Task
    run: Outcome
    wall_s: float
    """Wall time of the run in its worker."""


ProgressFn = Callable[[Done, int, int], None]
"""(finished run, runs finished so far, runs in all)."""


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------ what a worker does


Probe = tuple[int, int, int | None]
"""(scenario index, tier index, max_num_seqs): one capacity to measure."""
CapacityKey = tuple[str, int | None]


def _probe(setup: Setup, tier: int, seqs: int | None) -> tuple[CapacityKey, float]:
    value = runner.capacity_of(setup, tier, seqs)
    return (setup.tiers[tier].key, seqs), value


def _run(setup: Setup, task: Task) -> tuple[Outcome, float]:
    started = time.perf_counter()
    try:
        run: Outcome = runner.run_policy(setup, task.policy, task.seed, task.multiplier)
    except Exception:
        if not task.keep_going:
            raise
        run = Failed(task, traceback.format_exc())
    return run, time.perf_counter() - started


_WORKER_SETUPS: list[Setup] = []
"""A process worker's copy of the setups (sent once, at start, not with every task)."""


def _init_worker(setups: list[Setup]) -> None:
    _WORKER_SETUPS[:] = setups


def _probe_in_worker(index: int, tier: int, seqs: int | None) -> tuple[CapacityKey, float]:
    return _probe(_WORKER_SETUPS[index], tier, seqs)


def _run_in_worker(task: Task, caches: Mapping[CapacityKey, float]) -> Any:
    setup = _WORKER_SETUPS[task.setup]
    setup.capacity_cache.update(caches)
    return _run(setup, task)


# ------------------------------------------------------------------ the driver


def _probes_needed(setups: Sequence[Setup], tasks: Sequence[Task]) -> list[Probe]:
    """Every capacity the tasks' hindsight searches need, one probe per tier and
    max_num_seqs value (so the probes of one scenario spread over the workers too)."""
    out: dict[Probe, None] = {}
    for task in tasks:
        if task.policy not in CAPACITY_POLICIES:
            continue
        setup = setups[task.setup]
        seqs: list[int | None] = [None]
        if task.policy == "static" and setup.spec.static.max_num_seqs_choices:
            seqs += list(setup.spec.static.max_num_seqs_choices)
        for choice in seqs:
            for tier in range(len(setup.tiers)):
                out[(task.setup, tier, choice)] = None
    return list(out)


def _store(
    setups: Sequence[Setup], probes: Sequence[Probe], values: Sequence[Any]
) -> dict[int, dict[CapacityKey, float]]:
    """Measured capacities into each setup's cache; per scenario, for the runs."""
    caches: dict[int, dict[CapacityKey, float]] = {}
    for (index, _, _), (key, value) in zip(probes, values, strict=True):
        caches.setdefault(index, {})[key] = value
        setups[index].capacity_cache[key] = value
    return caches


def run_tasks(
    setups: Sequence[Setup],
    tasks: Sequence[Task],
    executor: str = "serial",
    jobs: int | None = None,
    progress: ProgressFn | None = None,
    ray_address: str | None = None,
) -> list[Outcome]:
    """Run every task; results in task order, whatever order they finish in.

    Capacities are probed first (one job per scenario that needs them) and handed to the
    runs, so no run measures them again.
    """
    if executor not in EXECUTORS:
        raise ExecutorError(f"--executor: expected one of {list(EXECUTORS)}, got {executor!r}")
    workers = jobs or default_jobs()
    if executor == "serial" or (executor == "process" and workers == 1):
        return _serial(setups, tasks, progress)
    if executor == "process":
        return _processes(setups, tasks, workers, progress)
    return _ray(setups, tasks, workers, progress, ray_address)


def _serial(
    setups: Sequence[Setup], tasks: Sequence[Task], progress: ProgressFn | None
) -> list[Outcome]:
    for index, tier, seqs in _probes_needed(setups, tasks):
        _probe(setups[index], tier, seqs)
    out: list[Outcome] = []
    for task in tasks:
        run, wall_s = _run(setups[task.setup], task)
        out.append(run)
        if progress:
            progress(Done(task, run, wall_s), len(out), len(tasks))
    return out


def _processes(
    setups: Sequence[Setup], tasks: Sequence[Task], workers: int, progress: ProgressFn | None
) -> list[Outcome]:
    # spawn, not fork: the parent may hold threads (a progress display) and locks.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(list(setups),)
    ) as pool:
        probes = _probes_needed(setups, tasks)
        measured = [pool.submit(_probe_in_worker, *probe) for probe in probes]
        caches = _store(setups, probes, [future.result() for future in measured])
        futures: dict[Future[Any], int] = {
            pool.submit(_run_in_worker, task, caches.get(task.setup, {})): i
            for i, task in enumerate(tasks)
        }
        return _collect(futures, tasks, progress)


def _collect(
    futures: Mapping[Future[Any], int], tasks: Sequence[Task], progress: ProgressFn | None
) -> list[Outcome]:
    results: dict[int, Outcome] = {}
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in sorted(finished, key=lambda f: futures[f]):
            run, wall_s = future.result()
            i = futures[future]
            results[i] = run
            if progress:
                progress(Done(tasks[i], run, wall_s), len(results), len(tasks))
    return [results[i] for i in range(len(tasks))]


# ------------------------------------------------------------------ Ray


def _ray_module() -> Any:
    try:
        import ray  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as err:
        raise ExecutorError(
            "--executor ray needs Ray: pip install 'tierscale-sim[ray]' (or pip install ray)"
        ) from err
    return ray


def _ray(
    setups: Sequence[Setup],
    tasks: Sequence[Task],
    workers: int,
    progress: ProgressFn | None,
    address: str | None,
) -> list[Outcome]:
    ray = _ray_module()
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        probe = ray.remote(_probe)
        run = ray.remote(_ray_run)
        refs = [ray.put(s) for s in setups]
        probes = _probes_needed(setups, tasks)
        measured = [probe.remote(refs[i], tier, seqs) for i, tier, seqs in probes]
        caches = _store(setups, probes, ray.get(measured))
        pending = {
            run.remote(refs[task.setup], task, caches.get(task.setup, {})): i
            for i, task in enumerate(tasks)
        }
        results: dict[int, Outcome] = {}
        for ref, (result, wall_s) in _ray_as_completed(ray, pending):
            i = pending[ref]
            results[i] = result
            if progress:
                progress(Done(tasks[i], result, wall_s), len(results), len(tasks))
        return [results[i] for i in range(len(tasks))]
    finally:
        if started_here:
            ray.shutdown()


def _ray_run(
    setup: Setup, task: Task, caches: Mapping[tuple[str, int | None], float]
) -> tuple[Outcome, float]:
    setup.capacity_cache.update(caches)
    return _run(setup, task)


def _ray_as_completed(ray: Any, refs: Mapping[Any, int]) -> Iterator[tuple[Any, Any]]:
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            yield ref, ray.get(ref)
