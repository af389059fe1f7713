"""The demo's compressed day: three tiers, a ramp, a burst, a tier-mix shift, a wind-down.

Pure data. The same schedule drives the live run (one load generator per tier, each a
`step:` pattern of its own rates through Envoy) and the fleet simulator's scenario for
the comparison (a `step` rate of the total with a `mix_phases` entry per step), so the
two see the same traffic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

STEP_S: Final = 15.0
PROMPT_TOKENS: Final = 8000
OUTPUT_TOKENS: Final = 48
"""Long prompts: one replica of the bundled H100 profile serves a handful of requests per
second within the tighter SLOs, so the day needs several replicas per tier at its peak
while the simulated pods stay far below what this machine can generate."""
COLD_START_S: Final = 10.0
STABILIZATION_S: Final = 30.0
MODEL: Final = "meta-llama/Llama-3.1-8B-Instruct"
PROFILE: Final = "llama-3.1-8b-h100"


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    ttft: str
    tpot: str
    percentile: float
    attainment: float
    priority: int
    max_replicas: int

    def slotier_spec(self) -> dict[str, Any]:
        """The SLOTier spec (the live SLOTier and the simulator's tier use the same)."""
        return {
            "model": MODEL,
            "slo": {
                "ttft": self.ttft,
                "tpot": self.tpot,
                "percentile": self.percentile,
                "attainment": self.attainment,
            },
            "priority": self.priority,
            "pool": {"deployment": self.name, "minReplicas": 1, "maxReplicas": self.max_replicas},
            "routing": {"value": self.name},
            "spillover": {"borrow": True, "lend": True},
            "scaling": {
                "coldStart": f"{COLD_START_S:g}s",
                "scaleDownStabilization": f"{STABILIZATION_S:g}s",
                "maxScaleUpReplicas": 4,
            },
        }


TIERS: Final = (
    TierSpec("interactive", "1s", "50ms", 99.0, 0.95, 30, 8),
    TierSpec("standard", "2s", "100ms", 95.0, 0.95, 20, 8),
    TierSpec("batch", "8s", "250ms", 90.0, 0.9, 10, 8),
)


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    totals_rps: tuple[float, ...]
    """Total rate of each step of the phase."""
    mix: dict[str, float]
    """Tier shares (normalised)."""


DAY: Final = (
    Phase(
        "morning ramp",
        (1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.0),
        {"interactive": 0.5, "standard": 0.35, "batch": 0.15},
    ),
    Phase("burst", (16.0, 16.0, 8.0), {"interactive": 0.5, "standard": 0.35, "batch": 0.15}),
    Phase(
        "tier-mix shift",
        (8.0, 8.0, 8.0, 8.0, 8.0, 8.0),
        {"interactive": 0.15, "standard": 0.3, "batch": 0.55},
    ),
    Phase(
        "evening",
        (6.0, 4.0, 2.5, 1.5, 1.5, 1.5, 1.5),
        {"interactive": 0.3, "standard": 0.4, "batch": 0.3},
    ),
)
"""24 steps of 15 s: 6 minutes."""


def steps(day: Sequence[Phase] = DAY) -> list[tuple[float, str, dict[str, float]]]:
    """(start_s, phase name, rate by tier) of every step."""
    out = []
    at = 0.0
    for phase in day:
        total_share = sum(phase.mix.values())
        for total in phase.totals_rps:
            rates = {t: round(total * s / total_share, 3) for t, s in phase.mix.items()}
            out.append((at, phase.name, rates))
            at += STEP_S
    return out


def duration_s(day: Sequence[Phase] = DAY) -> float:
    return STEP_S * sum(len(p.totals_rps) for p in day)


def phase_at(elapsed_s: float, day: Sequence[Phase] = DAY) -> str:
    name = day[-1].name
    for start, phase, _ in steps(day):
        if start <= elapsed_s:
            name = phase
    return name


def loadgen_args(tier: str, seed: int, day: Sequence[Phase] = DAY) -> list[str]:
    """One tier's load generator: its own step pattern, only its header value."""
    rates = [r[tier] for _, _, r in steps(day)]
    pattern = "/".join(f"{r:g}" for r in rates)
    return [
        *("--pattern", f"step:{pattern}:{STEP_S:g}"),
        *("--prompt-tokens", str(PROMPT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS)),
        *("--tier-mix", f"{tier}=1"),
        *("--max-duration-s", f"{duration_s(day):g}", "--max-requests", "20000"),
        *("--drain-timeout-s", "30", "--seed", str(seed)),
    ]


def offered_requests(day: Sequence[Phase] = DAY) -> dict[str, float]:
    """Expected requests per tier over the day (rate x step length)."""
    out: dict[str, float] = {}
    for _, _, rates in steps(day):
        for tier, rate in rates.items():
            out[tier] = out.get(tier, 0.0) + rate * STEP_S
    return out


def sim_scenario(
    *, control_interval_s: float, metrics_window_s: float, day: Sequence[Phase] = DAY
) -> dict[str, Any]:
    """The fleet simulator's scenario for the same traffic, tiers and policy."""
    timeline = steps(day)
    return {
        "name": "demo-live",
        "description": "the live demo's compressed day, in the fleet simulator",
        "models": {MODEL: {"profile": PROFILE}},
        "tiers": [{"name": t.name, "spec": t.slotier_spec()} for t in TIERS],
        "workload": {
            "rate": {
                "kind": "step",
                "levels": [[start, round(sum(r.values()), 3)] for start, _, r in timeline],
            },
            "duration_s": duration_s(day),
            "mix_phases": [{"start_s": start, "mix": rates} for start, _, rates in timeline],
            "tokens": {
                "prompt_mean": PROMPT_TOKENS,
                "output_mean": OUTPUT_TOKENS,
                "dist": "fixed",
            },
        },
        "control_interval_s": control_interval_s,
        "metrics_window_s": metrics_window_s,
        "policies": ["tierscale"],
        "seeds": 1,
    }
