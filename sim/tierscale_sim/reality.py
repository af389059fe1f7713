"""The engine that plays reality when it differs from the model the policies are given.

A scenario's `models.<name>.reality` (model mismatch) says how: step costs scaled,
costs outside the step (per request, per output token) the declared profile lacks, and a
different vLLM batch limit. Policies are built from the declared profile; the simulated
replicas, the capacity probe and therefore the oracle and the hindsight baselines run
the true engine.

The step-cost multipliers are a changed `StepProfile` (every step term, the compute-bound
line and its floor included); the per-request and per-output-token costs are applied by
the replica backend (`replica_port.Overheads`) on top of the costs the declared profile
already has (its `request_overhead_s`, `output_s_per_token`, ...): reality's costs are
the ones the declared model lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tierscale_predictor.profiles import StepProfile
from tierscale_sim.replica_port import Overheads
from tierscale_sim.scenario import RealitySpec


@dataclass(frozen=True, slots=True)
class TrueEngine:
    """How one served model's replicas really run."""

    profile: StepProfile
    overheads: Overheads
    max_num_seqs: int | None
    """vLLM's batch limit the replicas really use; None: what the Deployment says."""


def true_engine(declared: StepProfile, reality: RealitySpec) -> TrueEngine:
    """The declared profile changed as `reality` says (the declared one when exact)."""
    overheads = Overheads(
        request_overhead_s=reality.request_overhead_s,
        request_overhead_s_per_prompt_token=reality.request_overhead_s_per_prompt_token,
        output_s_per_token=reality.output_s_per_token,
    )
    step, prefill, decode = (
        reality.step_cost_x,
        reality.step_cost_x * reality.prefill_cost_x,
        reality.step_cost_x * reality.decode_cost_x,
    )
    profile = declared
    if (step, prefill, decode) != (1.0, 1.0, 1.0):
        profile = replace(
            declared,
            base_s=declared.base_s * step,
            prefill_s_per_token=declared.prefill_s_per_token * prefill,
            decode_s_per_seq=declared.decode_s_per_seq * decode,
            decode_s_per_seq_above_knee=declared.decode_s_per_seq_above_knee * decode,
            context_s_per_token=declared.context_s_per_token * step,
            # The compute-bound line and its floor scale together (the floor stays <= base).
            compute_s_per_token=declared.compute_s_per_token * step,
            compute_floor_s=declared.compute_floor_s * step,
            attention_s_per_token_pair=declared.attention_s_per_token_pair * prefill,
        )
    return TrueEngine(profile, overheads, reality.max_num_seqs)


def describe(reality: RealitySpec) -> str:
    """One line for reports: what differs from the declared model ("" when nothing)."""
    parts: list[str] = []
    if reality.step_cost_x != 1.0:
        parts.append(f"step x{reality.step_cost_x:.2f}")
    if reality.prefill_cost_x != 1.0:
        parts.append(f"prefill x{reality.prefill_cost_x:.2f}")
    if reality.decode_cost_x != 1.0:
        parts.append(f"decode x{reality.decode_cost_x:.2f}")
    if reality.request_overhead_s or reality.request_overhead_s_per_prompt_token:
        per_token_us = reality.request_overhead_s_per_prompt_token * 1e6
        parts.append(
            f"+{reality.request_overhead_s * 1e3:.1f} ms/request"
            + (f" +{per_token_us:.2f} us/prompt token" if per_token_us else "")
        )
    if reality.output_s_per_token:
        parts.append(f"+{reality.output_s_per_token * 1e3:.1f} ms/output token")
    if reality.max_num_seqs is not None:
        parts.append(f"max_num_seqs {reality.max_num_seqs}")
    return ", ".join(parts)
