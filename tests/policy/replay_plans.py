"""Replay the planner on seeded random multi-tier, multi-tick scenarios and print every plan.

A before/after check for refactors of `tierscale.policy`: run it on two commits and diff
(or compare the digests). `--fields all` prints each `Plan` as its repr (every number,
reason and message, and the state handed on); `--fields decisions` prints only what
the actuators and the next decision read (replicas, routing weights, admission caps,
GPUs, unserved demand, predictions, learned state), so a change of the explanations
alone leaves it identical.

    python -m tests.policy.replay_plans --scenarios 200 --fields all --out before.txt

The scenarios cover what the planner branches on: budgets (total and per model) from
ample to below the minimums, two served models, breaches with and without attainment
data, replicas still loading, stale, missing and future metrics, other writers,
two tiers naming one Deployment, scale-up and scale-down step limits, in-flight floors,
calibration on and off, and state carried across 2 to 5 ticks of changing demand.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import Plan, PlannerState
from tierscale.domain.tiers import GpuBudget, Pool, Scaling, Slo, Tier
from tierscale.policy import planner
from tierscale_predictor import latency, profiles

MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "other/model")
TTFT_S = (0.3, 0.5, 1.0, 5.0)
TPOT_S = (0.02, 0.03, 0.05, 0.1)


def _tiers(rng: random.Random) -> list[Tier]:
    tiers = []
    for i in range(rng.randint(1, 5)):
        min_replicas = rng.choice((0, 0, 1, 2))
        deployment = f"vllm-t{i}" if rng.random() > 0.08 or i == 0 else "vllm-t0"
        tiers.append(
            Tier(
                name=f"t{i}",
                namespace="llm",
                model=MODELS[0] if rng.random() < 0.85 else MODELS[1],
                slo=Slo(
                    ttft_s=rng.choice(TTFT_S),
                    tpot_s=rng.choice(TPOT_S),
                    percentile=rng.choice((99.0, 99.0, 95.0)),
                    attainment_frac=rng.choice((0.99, 0.95)),
                ),
                pool=Pool(
                    deployment,
                    min_replicas,
                    rng.randint(max(min_replicas, 1), 14),
                    rng.choice((1, 1, 1, 2)),
                    max_num_batched_tokens=rng.choice((None, None, 2048)),
                ),
                priority=rng.randint(0, 3),
                borrow=rng.random() < 0.7,
                lend=rng.random() < 0.7,
                scaling=Scaling(
                    cold_start_s=rng.choice((60.0, 120.0, 180.0)),
                    scale_down_stabilization_s=rng.choice((0.0, 60.0, 300.0)),
                    max_scale_up_replicas=rng.choice((1, 2, 4, 100)),
                    max_scale_down_replicas=rng.choice((1, 1, 3)),
                ),
            )
        )
    return tiers


def _budget(rng: random.Random, tiers: list[Tier]) -> GpuBudget | None:
    roll = rng.random()
    if roll < 0.3:
        return None
    minimum = sum(t.pool.min_replicas * t.pool.gpus_per_replica for t in tiers)
    total = max(minimum + rng.randint(-1, 12), 1)
    if roll < 0.85:
        return GpuBudget(total_gpus=total)
    return GpuBudget(total_gpus=None if roll < 0.92 else total + 4, by_model=((MODELS[0], total),))


def _observation(
    rng: random.Random, tier: Tier, now_s: float, rate_rps: float, replicas: int
) -> TierObservation | None:
    roll = rng.random()
    if roll < 0.04:
        return None
    age_s = 5.0
    if roll < 0.08:
        age_s = rng.choice((120.0, -10.0))  # stale, or sampled after the decision time
    current = replicas if rng.random() < 0.9 else None
    ready = current if current is None or rng.random() < 0.7 else rng.randint(0, current)
    attainment = None
    ttft_s = tpot_s = None
    if rng.random() < 0.6:
        breach = rng.random() < 0.25
        ttft_s = tier.slo.ttft_s * (rng.uniform(1.0, 2.0) if breach else rng.uniform(0.3, 1.0))
        tpot_s = tier.slo.tpot_s * rng.uniform(0.3, 1.05)
        if rng.random() < 0.6:
            attainment = rng.uniform(0.85, 0.97) if breach else rng.uniform(0.97, 1.0)
    prompt = rng.choice((200.0, 1000.0, 2000.0, 3000.0))
    output = rng.choice((30.0, 200.0, 600.0))
    return TierObservation(
        tier_key=tier.key,
        sampled_at_s=now_s - age_s,
        rate_rps=None if roll > 0.97 else rate_rps,
        window_s=60.0,
        prompt_tokens_mean=prompt,
        output_tokens_mean=output,
        prompt_tokens_p99=prompt * rng.choice((2.0, 4.0, 8.0)) if rng.random() < 0.5 else None,
        output_tokens_p99=output * rng.choice((1.5, 3.0)) if rng.random() < 0.5 else None,
        ready_replicas=ready,
        current_replicas=current,
        running_requests=rng.choice((None, 0.0, 10.0, 400.0)),
        waiting_requests=rng.choice((None, 0.0, 50.0)),
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        pool_rate_rps=rate_rps if rng.random() < 0.5 else None,
        attainment_frac=attainment,
        window_requests=rate_rps * 60.0 if attainment is not None and rng.random() < 0.5 else None,
        rate_history_rps=tuple(
            (now_s - 30.0 * k, max(rate_rps * rng.uniform(0.6, 1.3), 0.0)) for k in range(6, 0, -1)
        )
        if rng.random() < 0.6
        else (),
    )


def _config(rng: random.Random) -> planner.PlannerConfig:
    return planner.PlannerConfig(
        calibrate_tpot=rng.random() < 0.3,
        calibrate_ttft=rng.random() < 0.15,
        margins_yield_to_demand=rng.random() < 0.85,
    )


@dataclass(frozen=True)
class Step:
    """One `plan` call of a scenario: what it read and what it returned."""

    tiers: list[Tier]
    observations: Observations
    budget: GpuBudget | None
    state_in: PlannerState
    config: planner.PlannerConfig
    plan: Plan


def scenario_plans(seed: int, model: latency.LatencyModel) -> Iterator[Step]:
    """The plans of one seeded scenario: 2 to 5 ticks with state carried between them."""
    rng = random.Random(seed)
    tiers = _tiers(rng)
    budget = _budget(rng, tiers)
    config = _config(rng)
    models = {name: model for name in MODELS}
    rates = {t.key: rng.choice((0.0, 0.5, 3.0, 10.0, 30.0, 80.0)) for t in tiers}
    replicas = {t.key: rng.randint(0, 6) for t in tiers}
    state = PlannerState()
    now_s = 1000.0
    for _ in range(rng.randint(2, 5)):
        seen = {}
        for tier in tiers:
            obs = _observation(rng, tier, now_s, rates[tier.key], replicas[tier.key])
            if obs is not None:
                seen[tier.key] = obs
        conflicts = {tiers[-1].key: "HorizontalPodAutoscaler/x"} if rng.random() < 0.05 else None
        result = planner.plan(
            tiers=tiers,
            observations=Observations(seen),
            model=models,
            now_s=now_s,
            state=state,
            budget=budget,
            config=config,
            conflicts=conflicts,
        )
        yield Step(tiers, Observations(seen), budget, state, config, result)
        state = result.state
        replicas = {k: d.desired_replicas for k, d in result.decisions.items()} | {
            k: v for k, v in replicas.items() if k not in result.decisions
        }
        rates = {k: max(r * rng.uniform(0.5, 1.8), 0.0) for k, r in rates.items()}
        now_s += rng.choice((15.0, 15.0, 120.0, 400.0))


def decisions_view(result: Plan) -> str:
    """What actuators and the next decision read: no reasons, messages or spill."""
    rows = [
        f"t={result.decided_at_s!r} gpus={result.total_gpus} solver={result.solver_status}",
        f"state={_state_view(result.state)}",
    ]
    for key, d in sorted(result.decisions.items()):
        rows.append(
            f"{key} n={d.desired_replicas} w={sorted(d.weights_by_pool.items())!r} "
            f"cap={d.admission_cap_rps!r} gpus={d.gpus} f={d.forecast_rate_rps!r} "
            f"s={d.served_rate_rps!r} u={d.unserved_rate_rps!r} c={d.capacity_rps_per_replica!r} "
            f"p=({d.predicted_ttft_s!r},{d.predicted_tpot_s!r}) m={d.model_correction!r}"
        )
    return "\n".join(rows)


def _state_view(state: PlannerState) -> str:
    return repr(
        (
            sorted(state.recommendations_by_tier.items()),
            state.last_plan_at_s,
            sorted(state.bias_by_tier.items()),
            sorted(state.lengths_by_tier.items()),
            sorted(state.correction_by_tier.items()),
            sorted(
                (k, d.desired_replicas, d.unserved_rate_rps, sorted(d.weights_by_pool.items()))
                for k, d in state.last_decisions.items()
            ),
        )
    )


def _check(step: Step, model: latency.LatencyModel) -> None:
    from tests.policy.test_planner_explanations import Inputs, check_plan

    seqs = {t.key: t.pool.max_num_seqs or model.max_num_seqs for t in step.tiers}
    inputs = Inputs(step.tiers, step.observations, step.budget, step.state_in, seqs)
    check_plan(step.plan, inputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--fields", choices=("all", "decisions"), default="all")
    parser.add_argument("--out", help="write every plan here (default: digest only)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also check every decision's reason and message against its numbers",
    )
    args = parser.parse_args(argv)
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    digest = hashlib.sha256()
    count = 0
    out = open(args.out, "w") if args.out else None  # noqa: SIM115
    try:
        for seed in range(args.first_seed, args.first_seed + args.scenarios):
            for step in scenario_plans(seed, model):
                result = step.plan
                if args.check:
                    _check(step, model)
                text = repr(result) if args.fields == "all" else decisions_view(result)
                line = f"seed={seed} {text}\n"
                digest.update(line.encode())
                count += 1
                if out is not None:
                    out.write(line)
    finally:
        if out is not None:
            out.close()
    print(f"{count} plans from {args.scenarios} scenarios, {args.fields}: {digest.hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
