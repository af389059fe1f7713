"""The observations file of `tierscale plan`: parsed at the edge into domain objects.

The format mirrors what the operator reads from Prometheus, so a live decision can be
written out and replayed offline through the same planner:

    {
      "nowSeconds": 1000.0,
      "budget": {"totalGpus": 16, "byModel": {"meta-llama/Llama-3.1-8B-Instruct": 12}},
      "tiers": {
        "llm/ide": {"sampledAtSeconds": 995.0, "rateRps": 4.0, "promptTokensMean": 1800,
                    "outputTokensMean": 60, "currentReplicas": 2, "readyReplicas": 2,
                    "ttftSeconds": 0.21, "tpotSeconds": 0.022,
                    "rateHistory": [[940.0, 3.1], [970.0, 3.6]]}
      }
    }
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierscale.domain.observations import Observations, TierObservation
from tierscale.domain.tiers import GpuBudget


class InputError(ValueError):
    """A planner input file is malformed; the message names the file and the field."""


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TierObservationIn(_Camel):
    sampled_at_s: float = Field(alias="sampledAtSeconds")
    rate_rps: float | None = Field(default=None, alias="rateRps", ge=0)
    window_s: float = Field(default=60.0, alias="windowSeconds", gt=0)
    prompt_tokens_mean: float | None = Field(default=None, alias="promptTokensMean", gt=0)
    output_tokens_mean: float | None = Field(default=None, alias="outputTokensMean", gt=0)
    prompt_tokens_p99: float | None = Field(default=None, alias="promptTokensP99", gt=0)
    output_tokens_p99: float | None = Field(default=None, alias="outputTokensP99", gt=0)
    ready_replicas: int | None = Field(default=None, alias="readyReplicas", ge=0)
    current_replicas: int | None = Field(default=None, alias="currentReplicas", ge=0)
    running_requests: float | None = Field(default=None, alias="runningRequests", ge=0)
    waiting_requests: float | None = Field(default=None, alias="waitingRequests", ge=0)
    kv_usage_frac: float | None = Field(default=None, alias="kvUsage", ge=0, le=1)
    ttft_s: float | None = Field(default=None, alias="ttftSeconds", ge=0)
    tpot_s: float | None = Field(default=None, alias="tpotSeconds", ge=0)
    rate_history: list[tuple[float, float]] = Field(default_factory=list, alias="rateHistory")


class BudgetIn(_Camel):
    total_gpus: int | None = Field(default=None, alias="totalGpus", ge=0)
    by_model: dict[str, int] = Field(default_factory=dict, alias="byModel")


class ObservationsFile(_Camel):
    now_s: float = Field(alias="nowSeconds")
    budget: BudgetIn | None = None
    tiers: dict[str, TierObservationIn]


def load_observations(path: Path) -> tuple[float, Observations, GpuBudget | None]:
    """Read an observations file; raise InputError naming the file, field and expectation."""
    try:
        raw = json.loads(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from err
    try:
        parsed = ObservationsFile.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise InputError(f"{path}: {problems}") from err
    by_tier = {
        key: TierObservation(
            tier_key=key,
            sampled_at_s=t.sampled_at_s,
            rate_rps=t.rate_rps,
            window_s=t.window_s,
            prompt_tokens_mean=t.prompt_tokens_mean,
            output_tokens_mean=t.output_tokens_mean,
            prompt_tokens_p99=t.prompt_tokens_p99,
            output_tokens_p99=t.output_tokens_p99,
            ready_replicas=t.ready_replicas,
            current_replicas=t.current_replicas,
            running_requests=t.running_requests,
            waiting_requests=t.waiting_requests,
            kv_usage_frac=t.kv_usage_frac,
            ttft_s=t.ttft_s,
            tpot_s=t.tpot_s,
            rate_history_rps=tuple(t.rate_history),
        )
        for key, t in parsed.tiers.items()
    }
    budget = None
    if parsed.budget is not None:
        budget = GpuBudget(
            total_gpus=parsed.budget.total_gpus,
            by_model=tuple(sorted(parsed.budget.by_model.items())),
        )
    return parsed.now_s, Observations(by_tier), budget
