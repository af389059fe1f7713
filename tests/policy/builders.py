"""Builders for planner tests: realistic tiers and observations."""

from __future__ import annotations

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import Pool, Scaling, Slo, Tier

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def make_tier(
    name: str,
    ttft_s: float,
    tpot_s: float,
    priority: int = 0,
    *,
    min_replicas: int = 0,
    max_replicas: int = 20,
    borrow: bool = True,
    lend: bool = True,
    gpus: int = 1,
    cold_start_s: float = 120.0,
) -> Tier:
    return Tier(
        name=name,
        namespace="llm",
        model=MODEL,
        slo=Slo(ttft_s=ttft_s, tpot_s=tpot_s),
        pool=Pool(f"vllm-{name}", min_replicas, max_replicas, gpus),
        priority=priority,
        borrow=borrow,
        lend=lend,
        scaling=Scaling(cold_start_s=cold_start_s, max_scale_up_replicas=100),
    )


def observe(
    tier: Tier,
    rate_rps: float,
    *,
    now_s: float = 1000.0,
    current: int = 0,
    ready: int | None = None,
    prompt: float = 1000.0,
    output: float = 200.0,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    age_s: float = 5.0,
) -> TierObservation:
    return TierObservation(
        tier_key=tier.key,
        sampled_at_s=now_s - age_s,
        rate_rps=rate_rps,
        window_s=60.0,
        prompt_tokens_mean=prompt,
        output_tokens_mean=output,
        current_replicas=current,
        ready_replicas=current if ready is None else ready,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
    )


def observations(*items: TierObservation) -> Observations:
    return Observations({o.tier_key: o for o in items})


def decided(*tiers: Tier) -> PlannerState:
    """A state in which the planner has decided these tiers before and kept the sizes it
    found: their breaches are the pool's, not a size the planner had not chosen
    (`PlannerConfig.inherited_size_explains_breaches`)."""
    return PlannerState(bias_by_tier={t.key: 1.0 for t in tiers})
