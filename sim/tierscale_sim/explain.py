"""Per-tick reasons of the policies that have them, for results.json and the plots.

A policy may implement `commands.Explaining`; the production planner's shell
(`PlannerPolicy`) already keeps everything its last decision read and returned in
`last_record` (a `records.DecisionRecord`), from which the reasons and the
observed-versus-planned numbers are read here, so the planner's shell needs no new code.
"""

from __future__ import annotations

from collections.abc import Mapping

from tierscale import records
from tierscale_sim.commands import Explaining, Policy, TierExplanation


def explanation_of(policy: Policy) -> Mapping[str, TierExplanation]:
    """What `policy` says about its last decision (empty when it says nothing)."""
    if isinstance(policy, Explaining):
        return policy.explain()
    record = getattr(policy, "last_record", None)
    if isinstance(record, records.DecisionRecord):
        return from_record(record)
    return {}


def from_record(record: records.DecisionRecord) -> dict[str, TierExplanation]:
    """The planner's decision, tier by tier: its reason and message, the demand it
    provisions for next to the demand observed, the latency it predicts next to the
    latency observed, the request lengths its capacities were computed for next to the
    window's, and the bias it learned from breaches."""
    out: dict[str, TierExplanation] = {}
    state = record.plan.state
    for key, d in record.plan.decisions.items():
        obs = record.observations.get(key)
        planned = state.lengths_by_tier.get(key, (None, None, None, None))
        out[key] = TierExplanation(
            reason=str(d.reason),
            message=d.message,
            desired_replicas=d.desired_replicas,
            observed_rate_rps=None if obs is None else obs.rate_rps,
            planned_rate_rps=d.forecast_rate_rps,
            observed_ttft_s=None if obs is None else obs.ttft_s,
            predicted_ttft_s=d.predicted_ttft_s,
            observed_tpot_s=None if obs is None else obs.tpot_s,
            predicted_tpot_s=d.predicted_tpot_s,
            capacity_rps_per_replica=d.capacity_rps_per_replica,
            spill_in_rps=d.spill_in_rps,
            spill_out_rps=d.spill_out_rps,
            admission_cap_rps=d.admission_cap_rps,
            observed_prompt_tokens_mean=None if obs is None else obs.prompt_tokens_mean,
            planned_prompt_tokens_mean=planned[0],
            observed_prompt_tokens_p99=None if obs is None else obs.prompt_tokens_p99,
            planned_prompt_tokens_p99=planned[2],
            observed_output_tokens_mean=None if obs is None else obs.output_tokens_mean,
            planned_output_tokens_mean=planned[1],
            observed_output_tokens_p99=None if obs is None else obs.output_tokens_p99,
            planned_output_tokens_p99=planned[3],
            bias=state.bias_by_tier.get(key),
            bias_floor=state.bias_floor_by_tier.get(key),
            observed_running_requests=None if obs is None else obs.running_requests,
            observed_waiting_requests=None if obs is None else obs.waiting_requests,
            batch_limit=state.batch_limit_by_tier.get(key),
        )
    return out
