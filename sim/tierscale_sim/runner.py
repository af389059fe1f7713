"""Runs a scenario: builds tiers, workload and replicas, drives each policy, scores the run.

Every policy of a (seed, load) point sees the identical workload (the workload's
generator is seeded by seed and load only) and a router seeded the same way, so
differences between rows are differences between policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import numpy as np

from tierscale.domain.tiers import Tier
from tierscale.policy.planner import PlannerConfig
from tierscale_predictor.profiles import ProfileError, StepProfile, load_profile
from tierscale_sim import apportion, capacity_probe, reality, scenario
from tierscale_sim.commands import Policy
from tierscale_sim.fleet import Fleet, FleetConfig, FleetRun, TickRecord
from tierscale_sim.policies import registry
from tierscale_sim.policies.hpa import HpaPolicy, HpaRule, KedaPolicy
from tierscale_sim.policies.oracle import OraclePolicy, fluid_gpu_hours
from tierscale_sim.policies.polyserve import PolyServePolicy
from tierscale_sim.policies.saber import SaberPolicy
from tierscale_sim.policies.static import StaticPolicy
from tierscale_sim.reality import TrueEngine
from tierscale_sim.replica_port import BackendFactory, EngineBackend, Overheads
from tierscale_sim.scoring import Criterion, RunScore, score_run
from tierscale_sim.workloads import (
    MixPhase,
    RateProfile,
    TokenSpec,
    Trace,
    TraceReplay,
    Workload,
    WorkloadError,
    first_requests,
    load_trace_csv,
    replay_trace,
    synthetic_workload,
    with_ttft_slo_choices,
)


@dataclass(slots=True)
class Setup:
    """Seed-independent parts of a scenario, built once."""

    spec: scenario.ScenarioSpec
    path: Path
    tiers: list[Tier]
    """As the SLOTiers declare them: what policies and scoring see."""
    fleet_tiers: list[Tier]
    """What the simulated pools run: the same, with each pool's real cold start."""
    profiles_by_model: dict[str, StepProfile]
    """The declared step-time profiles: what policies are given."""
    trace: Trace | None
    true_engines_by_model: dict[str, TrueEngine] = field(default_factory=dict)
    """What the simulated replicas really run (`models.<name>.reality`); missing: the
    declared profile, exactly."""
    capacity_cache: dict[tuple[str, int | None], float] = field(default_factory=dict)
    reference_workload: Workload | None = None
    """Seed 0 at load 1.0: where the capacity probe samples request lengths."""


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """One policy at one (seed, load) point."""

    score: RunScore
    timeline: tuple[TickRecord, ...]
    detail: str = ""
    """E.g. the configuration the static search picked."""


def prepare(spec: scenario.ScenarioSpec, path: Path) -> Setup:
    profiles: dict[str, StepProfile] = {}
    for name, model in spec.models.items():
        try:
            profiles[name] = load_profile(model.profile)
        except (ProfileError, KeyError, FileNotFoundError) as err:
            raise scenario.ScenarioError(
                f"scenario {path}: models.{name}.profile: unknown profile {model.profile!r} ({err})"
            ) from err
    trace = None
    if spec.workload.trace is not None:
        trace_path = scenario.resolve_path(spec.workload.trace.path, path)
        try:
            trace = load_trace_csv(trace_path)
        except WorkloadError as err:
            raise scenario.ScenarioError(f"scenario {path}: workload.trace.path: {err}") from err
        _check_trace_tiers(spec, path, trace_path, trace)
    return Setup(
        spec,
        path,
        scenario.tiers_of(spec),
        scenario.fleet_tiers_of(spec),
        profiles,
        trace,
        {
            name: reality.true_engine(profiles[name], model.reality)
            for name, model in spec.models.items()
            if not model.reality.is_exact
        },
    )


def _check_trace_tiers(
    spec: scenario.ScenarioSpec, path: Path, trace_path: Path, trace: Trace
) -> None:
    """Tiers of a trace's requests come from the workload's mix, else the trace's tier
    column: say which is missing or wrong before anything runs."""
    w = spec.workload
    if w.tier_mix or w.mix_phases:
        return
    names = [t.name for t in spec.tiers]
    if trace.tier_names is None:
        raise scenario.ScenarioError(
            f"scenario {path}: workload.tier_mix: required: the trace {trace_path} has no"
            f" tier column, so give tier_mix (or mix_phases) over the tiers {names}"
        )
    unknown = sorted(set(trace.tier_names) - set(names))
    if unknown:
        raise scenario.ScenarioError(
            f"scenario {path}: workload.trace.path: the trace's tier column names unknown"
            f" tiers {unknown}; tiers are {names} (or give tier_mix / mix_phases)"
        )


def _mix(
    spec: scenario.ScenarioSpec, tiers: list[Tier], raw: Mapping[str, float]
) -> dict[str, float]:
    by_name = {t.name: t.key for t in tiers}
    return {by_name[name]: share for name, share in raw.items()}


def _phases(spec: scenario.ScenarioSpec, tiers: list[Tier]) -> list[MixPhase]:
    """The workload's tier mix over time: its mix_phases, else one phase of tier_mix (else
    an even split)."""
    w = spec.workload
    if w.mix_phases:
        return [MixPhase(p.start_s, _mix(spec, tiers, p.mix)) for p in w.mix_phases]
    raw = w.tier_mix or {t.name: 1.0 for t in tiers}
    return [MixPhase(0.0, _mix(spec, tiers, raw))]


def build_workload(setup: Setup, seed: int, multiplier: float = 1.0) -> Workload:
    spec, tiers = setup.spec, setup.tiers
    keys = [t.key for t in tiers]
    rng = np.random.default_rng([seed, int(round(multiplier * 1000))])
    w = spec.workload
    if setup.trace is not None and w.trace is not None:
        t = w.trace
        # A sweep makes a trace denser: through the target peak when one is set (same
        # requests, faster), else by replicating requests (rate_scale).
        peak = None if t.peak_rate_rps is None else t.peak_rate_rps * multiplier
        replay = TraceReplay(
            start_s=t.start_s,
            duration_s=t.duration_s,
            time_scale=t.time_scale,
            peak_rate_rps=peak,
            peak_window_s=t.peak_window_s,
            rate_scale=t.rate_scale * (1.0 if peak is not None else multiplier),
        )
        phases = _phases(spec, tiers) if (w.tier_mix or w.mix_phases) else None
        replayed = replay_trace(setup.trace, replay, keys, phases, rng)
        if w.ttft_slo_choices_s:
            replayed = with_ttft_slo_choices(replayed, w.ttft_slo_choices_s, rng)
        return replayed if w.max_requests is None else first_requests(replayed, w.max_requests)
    assert w.rate is not None and w.duration_s is not None
    duration = w.duration_s
    r = w.rate
    if r.kind == "constant":
        profile = RateProfile.constant((r.rate_rps or 0.0) * multiplier, duration)
    elif r.kind == "step":
        levels = [(s, rate * multiplier) for s, rate in r.levels or []]
        profile = RateProfile.step(levels, duration)
    else:
        profile = RateProfile.diurnal(
            (r.min_rate_rps or 0.0) * multiplier,
            (r.peak_rate_rps or 0.0) * multiplier,
            r.period_s or duration,
            duration,
        )
    phases = _phases(spec, tiers)
    tokens: dict[str, TokenSpec] = {}
    for t_spec, tier in zip(spec.tiers, tiers, strict=True):
        ts = t_spec.sim.tokens or w.tokens
        assert ts is not None
        tokens[tier.key] = TokenSpec(
            ts.prompt_mean, ts.output_mean, ts.dist, ts.cv, ts.prompt_max, ts.output_max
        )
    workload = synthetic_workload(
        keys,
        profile,
        duration,
        phases,
        tokens,
        rng,
        cv=w.cv if w.arrivals == "gamma" else 1.0,
        ttft_slo_choices_s=w.ttft_slo_choices_s,
    )
    return workload if w.max_requests is None else first_requests(workload, w.max_requests)


def _engine_of(setup: Setup, tier: Tier, max_num_seqs: int | None) -> EngineBackendArgs:
    """What a replica of `tier`'s pool really runs: the true engine of a model mismatch,
    else the declared profile; `max_num_seqs` (the static search's choice) wins over both."""
    true = setup.true_engines_by_model.get(tier.model)
    if true is None:
        return EngineBackendArgs(
            setup.profiles_by_model[tier.model],
            max_num_seqs or tier.pool.max_num_seqs,
            tier.pool.max_num_batched_tokens,
            Overheads(),
        )
    return EngineBackendArgs(
        true.profile,
        max_num_seqs or true.max_num_seqs or tier.pool.max_num_seqs,
        tier.pool.max_num_batched_tokens,
        true.overheads,
    )


@dataclass(frozen=True, slots=True)
class EngineBackendArgs:
    profile: StepProfile
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    overheads: Overheads


def backend_factory(setup: Setup, max_num_seqs: int | None = None) -> BackendFactory:
    """Replicas run their pool's engine arguments (tiers_of folds the model's in) on the
    true engine (`models.<name>.reality`)."""
    args_of = {t.key: _engine_of(setup, t, max_num_seqs) for t in setup.tiers}

    def make(pool: str) -> EngineBackend:
        a = args_of[pool]
        return EngineBackend(
            a.profile,
            max_num_seqs=a.max_num_seqs,
            max_num_batched_tokens=a.max_num_batched_tokens,
            overheads=a.overheads,
        )

    return make


def capacities(setup: Setup, max_num_seqs: int | None = None) -> dict[str, float]:
    """Engine-validated capacity of one replica per tier, for the oracle and static sizing.

    Request lengths are sampled from the scenario's seed-0 workload at load 1.0 whatever
    run asks first, so every run of a scenario is sized with the same numbers. Measured on
    the true engine: the oracle knows what the replicas really are.
    """
    return {tier.key: capacity_of(setup, i, max_num_seqs) for i, tier in enumerate(setup.tiers)}


def capacity_of(setup: Setup, tier_index: int, max_num_seqs: int | None = None) -> float:
    """One tier's engine-validated capacity (cached in the setup; see `capacities`)."""
    tier = setup.tiers[tier_index]
    cache_key = (tier.key, max_num_seqs)
    if cache_key not in setup.capacity_cache:
        if setup.reference_workload is None:
            setup.reference_workload = build_workload(setup, 0, 1.0)
        workload = setup.reference_workload
        sel = workload.tier_index == tier_index
        prompts = workload.prompt_tokens[sel] if sel.any() else workload.prompt_tokens
        outputs = workload.output_tokens[sel] if sel.any() else workload.output_tokens
        true = _engine_of(setup, tier, max_num_seqs)
        setup.capacity_cache[cache_key] = capacity_probe.max_rate_rps(
            true.profile,
            tier.slo,
            prompts,
            outputs,
            max_num_seqs=true.max_num_seqs,
            max_num_batched_tokens=true.max_num_batched_tokens,
            overheads=true.overheads,
        )
    return setup.capacity_cache[cache_key]


def _initial(setup: Setup) -> dict[str, int]:
    out = {
        tier.key: t.initial_replicas for t, tier in zip(setup.spec.tiers, setup.tiers, strict=True)
    }
    if setup.spec.single_pool:
        out = {k: (v if i == 0 else 0) for i, (k, v) in enumerate(out.items())}
    return out


def _e2e_slos(setup: Setup) -> dict[str, float]:
    return {
        tier.key: t.sim.e2e_slo_s
        for t, tier in zip(setup.spec.tiers, setup.tiers, strict=True)
        if t.sim.e2e_slo_s is not None
    }


def simulate(
    setup: Setup,
    policy: Policy,
    workload: Workload,
    seed: int,
    initial_by_pool: Mapping[str, int],
    max_num_seqs: int | None = None,
) -> FleetRun:
    spec = setup.spec
    cfg = FleetConfig(
        control_interval_s=spec.control_interval_s,
        metrics_window_s=spec.metrics_window_s,
        budget_gpus=spec.budget_gpus,
        initial_replicas_by_pool=initial_by_pool,
        single_pool=spec.single_pool,
        track_deadlines=spec.criterion is Criterion.DEADLINE,
    )
    router = policy.router if isinstance(policy, PolyServePolicy | SaberPolicy) else None
    fleet = Fleet(
        setup.fleet_tiers,
        workload,
        policy,
        backend_factory(setup, max_num_seqs),
        cfg,
        np.random.default_rng([seed, 7]),
        router,
    )
    return fleet.run()


def make_policy(
    name: str,
    setup: Setup,
    workload: Workload,
    seed: int = 0,
    planner_config: PlannerConfig | None = None,
) -> Policy:
    """One closed-loop policy by its registered name (`policies.registry`).

    `planner_config` changes the planner of `tierscale`/`isolated` (ablations only).
    """
    entry = registry.POLICIES.get(name)
    if entry is None:
        raise scenario.ScenarioError(
            f"unknown policy {name!r}; expected one of {list(registry.POLICY_NAMES)}"
        )
    context = registry.PolicyContext(
        tiers=tuple(setup.tiers),
        profiles_by_model=setup.profiles_by_model,
        budget_gpus=setup.spec.budget_gpus,
        control_interval_s=setup.spec.control_interval_s,
        workload=workload,
        initial_replicas_by_pool=_initial(setup),
        e2e_slo_s_by_tier=_e2e_slos(setup),
        seed=seed,
        capacity_rps_by_tier=lambda: capacities(setup),
        planner_config=planner_config,
    )
    return entry.build(context)


def _score(setup: Setup, run: FleetRun, name: str, seed: int, multiplier: float) -> RunScore:
    return score_run(
        run,
        setup.tiers,
        name,
        seed,
        setup.spec.criterion,
        _e2e_slos(setup),
        multiplier,
        setup.spec.warmup_s,
    )


def score_after(setup: Setup, run: FleetRun, after_s: float) -> RunScore:
    """`run` scored on the requests that arrived after `after_s` (and after the scenario's
    warm-up); GPU-hours and scaling events still cover the whole run."""
    return score_run(
        run,
        setup.tiers,
        "",
        0,
        setup.spec.criterion,
        _e2e_slos(setup),
        1.0,
        max(after_s, setup.spec.warmup_s),
    )


def simulate_policy(
    setup: Setup,
    name: str,
    workload: Workload,
    seed: int,
    planner_config: PlannerConfig | None = None,
) -> FleetRun:
    """One closed-loop policy (not a hindsight search) over `workload`, from the
    scenario's initial replicas."""
    policy = make_policy(name, setup, workload, seed, planner_config)
    return simulate(setup, policy, workload, seed, _initial(setup))


def run_policy(
    setup: Setup,
    name: str,
    seed: int,
    multiplier: float = 1.0,
    planner_config: PlannerConfig | None = None,
) -> PolicyRun:
    workload = build_workload(setup, seed, multiplier)
    entry = registry.POLICIES.get(name)
    if entry is not None and entry.hindsight:
        return HINDSIGHT_SEARCHES[name](setup, workload, seed, multiplier)
    policy = make_policy(name, setup, workload, seed, planner_config)
    run = simulate(setup, policy, workload, seed, _initial(setup))
    detail = getattr(policy, "run_detail", "")
    return PolicyRun(_score(setup, run, name, seed, multiplier), run.timeline, str(detail))


HindsightSearch = Callable[[Setup, Workload, int, float], PolicyRun]


def _oracle_search(setup: Setup, workload: Workload, seed: int, multiplier: float) -> PolicyRun:
    return oracle_search(setup, workload, seed, multiplier)[0]


def oracle_search(
    setup: Setup, workload: Workload, seed: int, multiplier: float = 1.0
) -> tuple[PolicyRun, FleetRun]:
    """The cheapest perfect-knowledge fleet that meets every tier's target, with its run.

    Sized at exactly the engine-validated capacity, the oracle can miss targets where
    arrivals burst within its 5 s sub-windows, and a fleet that misses the targets bounds
    nothing. So it tries the headroom factors of `oracle.headroom_factors` in order and
    keeps the first that meets every tier. When none does (on the conversation and code
    traces, in some seeds, not even x1.5 does), it keeps the first, cheapest sizing and
    says so: more GPUs that still miss are no bound either.
    """
    caps = capacities(setup)
    interval_s = setup.spec.control_interval_s
    bound = fluid_gpu_hours(setup.tiers, workload, caps, interval_s)
    first: tuple[PolicyRun, FleetRun] | None = None
    for factor in setup.spec.oracle.headroom_factors:
        sized = {k: v / factor for k, v in caps.items()}
        policy = OraclePolicy(setup.tiers, workload, sized, interval_s, setup.spec.budget_gpus)
        run = simulate(setup, policy, workload, seed, policy.replicas_for(0.0))
        score = _score(setup, run, "oracle", seed, multiplier)
        detail = (
            f"headroom x{factor:g}; fluid bound {bound:.2f} GPU-h; capacity/replica "
            + ", ".join(f"{k.split('/')[-1]}={v:.2f} rps" for k, v in caps.items())
        )
        if score.all_tiers_met:
            return PolicyRun(score, run.timeline, detail), run
        if first is None:
            first = (PolicyRun(score, run.timeline, detail), run)
    assert first is not None
    tried = ", ".join(f"x{f:g}" for f in setup.spec.oracle.headroom_factors)
    kept, kept_run = first
    return replace(kept, detail=kept.detail + f" (no headroom of {tried} met every tier)"), kept_run


def _static_search(setup: Setup, workload: Workload, seed: int, multiplier: float) -> PolicyRun:
    """Best fixed fleet with hindsight: size from the peak, try a few scalings, keep the best.

    Best = fewest GPU-hours among candidates meeting every tier's target; if none does,
    the highest overall attainment. When none does, `static.refine_steps` more runs move
    one replica at a time from the tier with the most attainment to spare to the one
    furthest below its target (hindsight a person tuning a fixed fleet would use), so the
    baseline is not at the mercy of one capacity estimate.
    """
    spec = setup.spec
    seqs_choices: list[int | None] = [None]
    if spec.static.max_num_seqs_choices:
        seqs_choices = list(spec.static.max_num_seqs_choices)
    best: tuple[tuple[float, float], PolicyRun, dict[str, int], int | None] | None = None
    tried: set[tuple[int | None, tuple[int, ...]]] = set()

    def attempt(counts: dict[str, int], seqs: int | None) -> None:
        nonlocal best
        sig = (seqs, tuple(counts.values()))
        if sig in tried:
            return
        tried.add(sig)
        run = simulate(setup, StaticPolicy(counts), workload, seed, counts, seqs)
        score = _score(setup, run, "static", seed, multiplier)
        key = (0.0, -score.gpu_hours) if score.all_tiers_met else (-1.0, score.attainment_frac)
        detail = (
            "replicas "
            + ", ".join(f"{k.split('/')[-1]}={v}" for k, v in counts.items())
            + (f"; max_num_seqs={seqs}" if seqs else "")
        )
        if best is None or key > best[0]:
            best = (key, PolicyRun(score, run.timeline, detail), dict(counts), seqs)

    for seqs in seqs_choices:
        for factor in spec.static.scale_factors:
            attempt(_static_counts(setup, workload, seqs, factor), seqs)
    assert best is not None
    for _ in range(spec.static.refine_steps):
        current = best
        moved = _moved_replica(setup, current[1].score, current[2])
        if current[1].score.all_tiers_met or moved is None:
            break
        attempt(moved, current[3])
        if best is current:
            break
    return best[1]


def _moved_replica(setup: Setup, score: RunScore, counts: dict[str, int]) -> dict[str, int] | None:
    """One replica from the tier with the most attainment to spare to the neediest tier."""
    floor = {t.key: max(t.pool.min_replicas, 1 if counts[t.key] else 0) for t in setup.tiers}
    slack = {k: s.attainment_frac - s.target_frac for k, s in score.by_tier.items()}
    needy = min(slack, key=lambda k: (slack[k], k))
    donors = [k for k in slack if k != needy and counts[k] > floor[k]]
    if slack[needy] >= 0.0 or not donors:
        return None
    donor = max(donors, key=lambda k: (slack[k], k))
    return {**counts, donor: counts[donor] - 1, needy: counts[needy] + 1}


def _static_counts(
    setup: Setup, workload: Workload, seqs: int | None, factor: float
) -> dict[str, int]:
    """A fixed fleet sized for the peak (60 s window) at engine-validated capacity x factor."""
    tiers = setup.tiers
    if setup.spec.single_pool:
        return {t.key: (max(1, t.pool.min_replicas) if i == 0 else 0) for i, t in enumerate(tiers)}
    caps = capacities(setup, seqs)
    window = setup.spec.metrics_window_s
    need_by_tier: dict[str, float] = {}
    floor_by_tier: dict[str, int] = {}
    for i, t in enumerate(tiers):
        peak = _peak_rate(workload, i, window)
        need_by_tier[t.key] = factor * peak / max(caps[t.key], 1e-9)
        floor_by_tier[t.key] = max(t.pool.min_replicas, 1 if peak else 0)
    out = {
        t.key: max(floor_by_tier[t.key], min(t.pool.max_replicas, _ceil_need(need_by_tier[t.key])))
        for t in tiers
    }
    return apportion.share_budget(out, need_by_tier, floor_by_tier, setup.spec.budget_gpus)


def _ceil_need(replicas: float) -> int:
    return int(np.ceil(replicas - 1e-9))


def _peak_rate(workload: Workload, tier: int, window_s: float) -> float:
    sel = workload.arrival_s[workload.tier_index == tier]
    if sel.size == 0:
        return 0.0
    bins = np.arange(0.0, workload.duration_s + window_s, window_s)
    counts, _ = np.histogram(sel, bins=bins)
    return float(counts.max()) / window_s


def _tuned_search(kind: str) -> HindsightSearch:
    """`hpa-tuned` / `keda-tuned`: the autoscaler with each tier's threshold chosen with
    hindsight, as weeks of tuning on this very traffic would leave it.

    Every value of the scenario's grid (`tuning`) runs on the whole fleet; each tier then
    keeps the value with the fewest GPU-hours on its pool among those that met its target
    (none did: the one with the best attainment). One HPA per pool and one pool per tier
    make the tiers independent, so the combination is what each tier's own search found;
    it is run once more and that run is the result (under a GPU budget, where pools
    compete for GPUs, this last run is what counts).
    """

    def search(setup: Setup, workload: Workload, seed: int, multiplier: float) -> PolicyRun:
        name = f"{kind}-tuned"
        spec = setup.spec
        grid = spec.tuning.hpa_targets if kind == "hpa" else spec.tuning.keda_targets
        cls = HpaPolicy if kind == "hpa" else KedaPolicy
        runs: dict[float, tuple[FleetRun, RunScore]] = {}
        for target in grid:
            run = simulate(
                setup, cls(setup.tiers, HpaRule(target), name), workload, seed, _initial(setup)
            )
            runs[target] = (run, _score(setup, run, name, seed, multiplier))
        chosen = {t.key: _best_target(runs, t.key) for t in setup.tiers}
        detail = f"{kind} target per tier (grid {list(grid)}): " + ", ".join(
            f"{k.split('/')[-1]}={v:g}" for k, v in chosen.items()
        )
        if len(set(chosen.values())) == 1:
            run, score = runs[next(iter(chosen.values()))]
        else:
            rules = {k: HpaRule(v) for k, v in chosen.items()}
            policy = cls(setup.tiers, name=name, rules_by_tier=rules)
            run = simulate(setup, policy, workload, seed, _initial(setup))
            score = _score(setup, run, name, seed, multiplier)
        return PolicyRun(score, run.timeline, detail)

    return search


def _best_target(runs: Mapping[float, tuple[FleetRun, RunScore]], key: str) -> float:
    """The cheapest target (GPU-hours of this tier's pool) that met the tier's target, else
    the one with the best attainment (then the cheaper)."""
    met = [t for t, (_, score) in runs.items() if score.by_tier[key].met]
    if met:
        return min(met, key=lambda t: (runs[t][0].gpu_hours_by_pool[key], t))
    return max(
        runs,
        key=lambda t: (runs[t][1].by_tier[key].attainment_frac, -runs[t][0].gpu_hours_by_pool[key]),
    )


HINDSIGHT_SEARCHES: Final[Mapping[str, HindsightSearch]] = {
    "static": _static_search,
    "oracle": _oracle_search,
    "hpa-tuned": _tuned_search("hpa"),
    "keda-tuned": _tuned_search("keda"),
}
"""How each `hindsight` policy of the registry picks its fleet."""

ProgressFn = Callable[[str], None]
