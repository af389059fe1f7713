"""Random scenarios for the generalisation benchmark (`tierscale bench --generate N --seed S`).

A decision rule tuned on a handful of shipped scenarios can fit them and fail elsewhere.
This draws scenarios nobody tuned for, over every dimension the planner meets in
production: request lengths (short and long prompts and outputs, heavy tails), arrival
processes (Poisson, bursty, diurnal, bursts, flash crowds, a tier-mix shift), cold starts
(0-300 s), GPU budgets, 2-6 tiers, and a model mismatch (the engine that plays reality
differs from the declared profile: step costs x0.7..x1.5, per-request and per-output-token
costs, another batch limit).

Pure and seeded: scenario i of seed S is drawn from `numpy.random.default_rng([S, i])`
alone, so it is the same whatever N is, and every draw is a valid `ScenarioSpec` (the
same pydantic schema as a file). Sizes are bounded so that one run of one policy takes
seconds: 20-40 simulated minutes, peak demand of at most 40 req/s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from tierscale_predictor import capacity, latency
from tierscale_predictor.profiles import StepProfile, load_profile
from tierscale_sim.reality import describe, true_engine
from tierscale_sim.scenario import RealitySpec, ScenarioSpec

PROFILES: Final = ("llama-3.1-8b-h100", "llama-3.1-8b-a100-80gb")
"""Served-model profiles the generator draws from (one per scenario)."""
GENERATED_POLICIES: Final = (
    "tierscale",
    "isolated",
    "hpa",
    "keda",
    "hpa-tuned",
    "keda-tuned",
    "dynamo",
    "polyserve",
    "static",
    "oracle",
)
"""Every policy a generated scenario names (`--policies` picks a subset)."""
ARRIVALS: Final = ("poisson", "bursty", "diurnal", "bursts", "flash_crowd", "mix_shift")
PROMPT_CLASSES: Final = {"short": (100, 400), "medium": (500, 1500), "long": (2000, 6000)}
OUTPUT_CLASSES: Final = {"short": (16, 80), "medium": (100, 300), "long": (400, 900)}
PROMPT_MAX_TOKENS: Final = 16384
"""vLLM's max_model_len of the generated pools: a heavy tail is cut here."""
OUTPUT_MAX_TOKENS: Final = 2048
SIZING_TAIL: Final = latency.TailParams(
    ttft_residual_steps=0.65,
    ttft_queue_steps=1.02,
    tpot_interference=1.79,
    batch_limit_frac=0.9,
    busy_limit_frac=1.0,
    batch_spread=0.0,
    compute_excess=0.0,
    ttft_residual_bounded=0.0,
)
"""The tail constants every draw is sized with, frozen as they were at main 65bc260
(before the busy ceiling and the batch's spread; the report seed's draws are the same as
that commit's): the A/B of a predictor change then runs the same scenarios before and
after. Only the latency model's code is shared with the planner."""
MAX_PEAK_RATE_RPS: Final = 40.0
"""Upper bound of the busiest minute's demand: keeps a run to seconds."""


@dataclass(frozen=True, slots=True)
class Generated:
    """One random scenario and the values it was drawn with (for the benchmark's rows)."""

    spec: ScenarioSpec
    tags: Mapping[str, Any]


def generate(count: int, seed: int) -> list[Generated]:
    """Scenarios 0..count-1 of `seed` (each independent of `count`)."""
    return [generate_one(seed, i) for i in range(count)]


def generate_one(seed: int, index: int) -> Generated:
    rng = np.random.default_rng([seed, index])
    draw = _Draw(rng)
    data, tags = draw.scenario(f"gen-s{seed}-{index:03d}")
    return Generated(ScenarioSpec.model_validate(data), tags)


# ------------------------------------------------------------------ the draws


_TIER_CLASSES: Final = (
    # name, TTFT choices (s), TPOT choices (s), attainment choices
    ("interactive", (0.3, 0.5, 1.0), (0.03, 0.05), (0.95, 0.99)),
    ("chat", (1.0, 2.0), (0.06, 0.08, 0.1), (0.95, 0.99)),
    ("standard", (2.0, 3.0, 5.0), (0.1, 0.15), (0.9, 0.95, 0.99)),
    ("batch", (10.0, 20.0, 30.0), (0.2, 0.3), (0.9, 0.95)),
)


@dataclass(frozen=True, slots=True)
class _Tier:
    name: str
    ttft_s: float
    tpot_s: float
    attainment: float
    prompt_mean: float
    output_mean: float
    dist: str
    cv: float
    share: float


class _Draw:
    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def _pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return options[int(self._rng.integers(len(options)))]

    def _uniform(self, lo: float, hi: float) -> float:
        return float(self._rng.uniform(lo, hi))

    def scenario(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        profile_name = self._pick(PROFILES)
        declared = load_profile(profile_name)
        reality = self._reality()
        truth = true_engine(declared, reality).profile
        tiers = self._tiers(int(self._rng.integers(2, 7)), truth, reality)
        duration_min = int(self._pick((20, 30, 40)))
        if not reality.is_exact:
            duration_min = max(duration_min, 30)
        duration_s = 60.0 * duration_min
        cold_start_s = float(self._pick((0, 30, 60, 120, 180, 300)))
        arrival = self._pick(ARRIVALS)
        need_per_rps = {t.name: t.share / self._capacity_rps(declared, t) for t in tiers}
        mean_replicas = self._uniform(2.0, 10.0)
        rate_rps = mean_replicas / sum(need_per_rps.values())
        workload, peak_x = self._workload(arrival, rate_rps, duration_s, tiers)
        peak_rps = rate_rps * peak_x
        if peak_rps > MAX_PEAK_RATE_RPS:
            scale = MAX_PEAK_RATE_RPS / peak_rps
            workload = _scale_rates(workload, scale)
            rate_rps, peak_rps = rate_rps * scale, MAX_PEAK_RATE_RPS
        peak_share = _peak_shares(workload)
        peak_need = {
            t.name: peak_share[t.name] / t.share * need_per_rps[t.name] * peak_rps for t in tiers
        }
        budget = None
        if self._rng.random() < 0.25:
            budget = max(len(tiers), math.ceil(self._uniform(0.8, 1.2) * sum(peak_need.values())))
        warmup_s = 600.0 if not reality.is_exact else 300.0
        data: dict[str, Any] = {
            "name": name,
            "models": {"llm": _model(profile_name, reality)},
            "tiers": [
                _tier_spec(t, i, len(tiers), cold_start_s, peak_need[t.name])
                for i, t in enumerate(tiers)
            ],
            "workload": workload,
            "warmup_s": warmup_s,
            "budget_gpus": budget,
            "policies": list(GENERATED_POLICIES),
            "seeds": 1,
            "static": {"scale_factors": [1.0, 1.25], "refine_steps": 2},
            "tuning": {"hpa_targets": [0.1, 0.2, 0.4, 0.7], "keda_targets": [0.5, 1, 2, 5]},
        }
        mismatch = describe(reality)
        tags: dict[str, Any] = {
            "profile": profile_name,
            "tiers": len(tiers),
            "duration_min": duration_min,
            "arrival": arrival,
            "mean_rate_rps": round(rate_rps, 2),
            "peak_rate_rps": round(peak_rps, 2),
            "cold_start_s": cold_start_s,
            "budget_gpus": budget,
            "lengths": ", ".join(
                f"{t.name}: {t.prompt_mean:.0f}/{t.output_mean:.0f} {t.dist}"
                + (f" cv {t.cv:.1f}" if t.dist == "lognormal" else "")
                for t in tiers
            ),
            "mismatch": mismatch or None,
        }
        data["description"] = (
            f"{len(tiers)} tiers on {profile_name}, {arrival} at {rate_rps:.1f} req/s"
            f" (peak {peak_rps:.1f}), {duration_min} min, cold start {cold_start_s:g} s"
            + (f", budget {budget} GPUs" if budget else "")
            + (f", mismatch: {mismatch}" if mismatch else "")
        )
        return data, tags

    def _reality(self) -> RealitySpec:
        if self._rng.random() >= 0.4:
            return RealitySpec()
        step = self._uniform(0.7, 1.5)
        prefill = self._uniform(0.85, 1.2) if self._rng.random() < 0.5 else 1.0
        decode = self._uniform(0.85, 1.2) if self._rng.random() < 0.5 else 1.0
        seqs = self._pick((None, None, 32, 64, 128))
        return RealitySpec(
            step_cost_x=round(step, 3),
            prefill_cost_x=round(prefill, 3),
            decode_cost_x=round(decode, 3),
            request_overhead_s=round(self._uniform(0.0, 0.01), 4),
            request_overhead_s_per_prompt_token=round(self._uniform(0.0, 3e-6), 9),
            output_s_per_token=round(self._uniform(0.0, 0.006), 4),
            max_num_seqs=seqs,
        )

    def _tiers(self, count: int, truth: StepProfile, reality: RealitySpec) -> list[_Tier]:
        classes = sorted(
            (int(self._rng.integers(len(_TIER_CLASSES))) for _ in range(count)),
        )
        shares = self._rng.dirichlet(np.full(count, 2.0))
        shares = np.maximum(shares, 0.05)
        shares = shares / shares.sum()
        out: list[_Tier] = []
        for i, c in enumerate(classes):
            label, ttfts, tpots, attainments = _TIER_CLASSES[c]
            prompt_mean = self._uniform(*PROMPT_CLASSES[self._pick(list(PROMPT_CLASSES))])
            output_mean = self._uniform(*OUTPUT_CLASSES[self._pick(list(OUTPUT_CLASSES))])
            dist = self._pick(("exponential", "lognormal", "lognormal"))
            cv = round(self._uniform(0.5, 2.5), 2) if dist == "lognormal" else 1.0
            # Feasible on an idle replica of the true engine, with room to queue: a TTFT
            # SLO at least 3 prefills of a long prompt, a TPOT at least 3 idle steps.
            long_prompt = min(
                PROMPT_MAX_TOKENS, prompt_mean * (3.0 if dist != "lognormal" else 1 + 2 * cv)
            )
            chunks = math.ceil(long_prompt / truth.max_num_batched_tokens)
            prefill_s = chunks * truth.base_s + long_prompt * truth.prefill_s_per_token
            overhead_s = (
                reality.request_overhead_s
                + long_prompt * reality.request_overhead_s_per_prompt_token
            )
            ttft = max(float(self._pick(ttfts)), round(3 * prefill_s + overhead_s, 2))
            floor_tpot = 3 * truth.base_s + reality.output_s_per_token
            tpot = max(float(self._pick(tpots)), round(floor_tpot + 0.005, 3))
            out.append(
                _Tier(
                    name=f"{label}-{i}",
                    ttft_s=ttft,
                    tpot_s=tpot,
                    attainment=float(self._pick(attainments)),
                    prompt_mean=round(prompt_mean),
                    output_mean=round(output_mean),
                    dist=dist,
                    cv=cv,
                    share=float(shares[i]),
                )
            )
        return out

    @staticmethod
    def _capacity_rps(declared: StepProfile, tier: _Tier) -> float:
        """A rough per-replica capacity (the declared model's), only to size the draw's
        demand, maxReplicas and budget; nobody is judged by it. With `SIZING_TAIL`, not
        the planner's current constants: a change to the predictor must not change the
        scenarios that judge it."""
        model = latency.LatencyModel.from_profile(declared, tail=SIZING_TAIL)
        shape = latency.WorkloadShape(tier.prompt_mean, tier.output_mean)
        slo = latency.SloTarget(tier.ttft_s, tier.tpot_s)
        return max(capacity.max_rate_rps(model, slo, shape), 0.2)

    def _workload(
        self, arrival: str, rate_rps: float, duration_s: float, tiers: list[_Tier]
    ) -> tuple[dict[str, Any], float]:
        """The workload section and its peak rate / mean-level rate."""
        mix = {t.name: round(t.share, 4) for t in tiers}
        w: dict[str, Any] = {"duration_s": duration_s, "tier_mix": mix}
        peak_x = 1.0
        if arrival in ("poisson", "bursty", "mix_shift"):
            w["rate"] = {"kind": "constant", "rate_rps": round(rate_rps, 3)}
        elif arrival == "diurnal":
            low = self._uniform(0.2, 0.5)
            peak = 2.0 / (1.0 + low)  # the mean of the cosine is the level's mean
            w["rate"] = {
                "kind": "diurnal",
                "min_rate_rps": round(rate_rps * peak * low, 3),
                "peak_rate_rps": round(rate_rps * peak, 3),
                "period_s": duration_s,
            }
            peak_x = peak
        elif arrival == "bursts":
            levels: list[list[float]] = [[0.0, round(rate_rps, 3)]]
            starts = sorted(self._rng.uniform(0.15, 0.85, size=int(self._rng.integers(2, 5))))
            for start in starts:
                burst_x = self._uniform(2.0, 3.0)
                t0 = round(start * duration_s)
                t1 = t0 + 60 * int(self._rng.integers(1, 4))
                if t0 <= levels[-1][0]:
                    continue
                levels += [[t0, round(rate_rps * burst_x, 3)], [t1, round(rate_rps, 3)]]
                peak_x = max(peak_x, burst_x)
            w["rate"] = {"kind": "step", "levels": levels}
        else:  # flash_crowd: a jump, a plateau, a decay back in steps
            crowd_x = self._uniform(3.0, 6.0)
            t0 = round(self._uniform(0.25, 0.5) * duration_s)
            plateau = 60 * int(self._rng.integers(4, 11))
            levels = [[0.0, round(rate_rps, 3)], [t0, round(rate_rps * crowd_x, 3)]]
            t = t0 + plateau
            for frac in (0.6, 0.3):
                levels.append([t, round(rate_rps * (1 + (crowd_x - 1) * frac), 3)])
                t += 120
            levels.append([t, round(rate_rps, 3)])
            w["rate"] = {"kind": "step", "levels": levels}
            peak_x = crowd_x
        if arrival == "bursty":
            w["arrivals"] = "gamma"
            w["cv"] = round(self._uniform(1.5, 4.0), 2)
        if arrival == "mix_shift":
            shifted = dict(zip(mix, reversed(list(mix.values())), strict=True))
            at = round(self._uniform(0.35, 0.6) * duration_s)
            w.pop("tier_mix")
            w["mix_phases"] = [{"start_s": 0, "mix": mix}, {"start_s": at, "mix": shifted}]
        return w, peak_x


def _peak_shares(workload: Mapping[str, Any]) -> dict[str, float]:
    """Each tier's largest normalised share of the demand over the mix phases."""
    mixes = (
        [workload["tier_mix"]]
        if "tier_mix" in workload
        else [p["mix"] for p in workload["mix_phases"]]
    )
    out: dict[str, float] = {}
    for mix in mixes:
        total = sum(mix.values())
        for name, share in mix.items():
            out[name] = max(out.get(name, 0.0), share / total)
    return out


def _scale_rates(workload: dict[str, Any], scale: float) -> dict[str, Any]:
    rate = dict(workload["rate"])
    for key in ("rate_rps", "min_rate_rps", "peak_rate_rps"):
        if key in rate:
            rate[key] = round(rate[key] * scale, 3)
    if "levels" in rate:
        rate["levels"] = [[t, round(r * scale, 3)] for t, r in rate["levels"]]
    return {**workload, "rate": rate}


def _model(profile_name: str, reality: RealitySpec) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": profile_name}
    if not reality.is_exact:
        out["reality"] = reality.model_dump(exclude_defaults=True)
    return out


def _tier_spec(
    t: _Tier, index: int, count: int, cold_start_s: float, peak_need: float
) -> dict[str, Any]:
    max_replicas = max(2, math.ceil(2.0 * peak_need) + 2)
    return {
        "name": t.name,
        "spec": {
            "model": "llm",
            "slo": {
                "ttft": f"{round(t.ttft_s * 1000)}ms",
                "tpot": f"{round(t.tpot_s * 1000)}ms",
                "attainment": t.attainment,
            },
            # Tighter tiers first (classes are sorted), so they get the higher priority.
            "priority": 10 * (count - index),
            "pool": {
                "deployment": f"vllm-{t.name}",
                "minReplicas": 1,
                "maxReplicas": max_replicas,
            },
            "scaling": {"coldStart": f"{cold_start_s:g}s"},
        },
        "sim": {
            "tokens": {
                "prompt_mean": t.prompt_mean,
                "output_mean": t.output_mean,
                "dist": t.dist,
                "cv": t.cv,
                "prompt_max": PROMPT_MAX_TOKENS,
                "output_max": OUTPUT_MAX_TOKENS,
            }
        },
    }
