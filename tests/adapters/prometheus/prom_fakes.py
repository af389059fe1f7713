"""A scripted `Transport` and builders of Prometheus API JSON, for the adapter's unit tests.

Responses are keyed by the exact PromQL the adapter sends, rendered here with the same
`queries` definitions: a test that passes proves the adapter asked for these queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tierscale.adapters.prometheus import queries
from tierscale.domain.tiers import Pool, Slo, Tier

NOW_S = 1_700_000_000.0
WINDOW_S = 60.0


def tier(
    name: str,
    deployment: str,
    *,
    namespace: str = "ns",
    percentile: float = 99.0,
    ttft_s: float = 0.5,
    tpot_s: float = 0.05,
) -> Tier:
    return Tier(
        name=name,
        namespace=namespace,
        model="m",
        slo=Slo(ttft_s=ttft_s, tpot_s=tpot_s, percentile=percentile),
        pool=Pool(deployment=deployment),
    )


def sample(labels: Mapping[str, str], value: float | str, at_s: float = NOW_S) -> dict[str, object]:
    return {"metric": dict(labels), "value": [at_s, str(value)]}


def pool_sample(ns: str, dep: str, value: float | str, **extra: str) -> dict[str, object]:
    return sample({"namespace": ns, "deployment": dep, **extra}, value)


def route_sample(route: str, value: float | str) -> dict[str, object]:
    return sample({"envoy_route": route}, value)


def bucket_rows(
    ns: str, dep: str, cumulative_by_le: Mapping[str, float | str]
) -> list[dict[str, object]]:
    return [pool_sample(ns, dep, v, le=le) for le, v in cumulative_by_le.items()]


@dataclass
class Call:
    kind: str
    promql: str
    args: tuple[float, ...]


@dataclass
class ScriptedTransport:
    """Answers each PromQL from `responses` (an exception is raised); anything else: []."""

    responses: dict[str, object] = field(default_factory=dict)
    ranges: dict[str, object] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def instant(self, promql: str, at_s: float, timeout_s: float) -> object:
        self.calls.append(Call("instant", promql, (at_s, timeout_s)))
        return self._answer(self.responses.get(promql, []))

    def range(
        self, promql: str, start_s: float, end_s: float, step_s: float, timeout_s: float
    ) -> object:
        self.calls.append(Call("range", promql, (start_s, end_s, step_s, timeout_s)))
        return self._answer(self.ranges.get(promql, []))

    @staticmethod
    def _answer(response: object) -> object:
        if isinstance(response, BaseException):
            raise response
        return response


def pool_promql(query: queries.Input, pools: Sequence[tuple[str, str]], window_s: float) -> str:
    return query.render(queries.pool_selector(pools), window_s)


def tier_promql(query: queries.Input, routes: Sequence[str], window_s: float) -> str:
    return query.render(queries.route_selector(routes), window_s)


def healthy_pool_responses(
    pools: Sequence[tuple[str, str]], window_s: float = WINDOW_S, sampled_at_s: float = NOW_S - 3
) -> dict[str, object]:
    """Every pool query answered for `pools` with the same plausible numbers."""
    rows: dict[queries.Input, list[dict[str, object]]] = {q: [] for q in queries.POOL_INPUTS}
    for ns, dep in pools:
        rows[queries.POOL_SAMPLED_AT].append(pool_sample(ns, dep, sampled_at_s))
        rows[queries.POOL_TTFT] += bucket_rows(
            ns, dep, {"0.1": 50, "0.25": 90, "0.5": 98, "1.0": 100, "+Inf": 100}
        )
        rows[queries.POOL_TPOT] += bucket_rows(
            ns, dep, {"0.025": 60, "0.05": 95, "0.075": 100, "+Inf": 100}
        )
        rows[queries.POOL_TPOT_SUM].append(pool_sample(ns, dep, 100 * 0.03))
        rows[queries.POOL_PROMPT_TOKENS] += bucket_rows(
            ns, dep, {"500": 0, "1000": 100, "2000": 100, "+Inf": 100}
        )
        rows[queries.POOL_PROMPT_TOKENS_SUM].append(pool_sample(ns, dep, 100 * 900))
        rows[queries.POOL_OUTPUT_TOKENS] += bucket_rows(ns, dep, {"50": 0, "100": 100, "+Inf": 100})
        rows[queries.POOL_OUTPUT_TOKENS_SUM].append(pool_sample(ns, dep, 100 * 64))
        rows[queries.POOL_FINISHED_RATE].append(pool_sample(ns, dep, 1.5))
        rows[queries.POOL_RUNNING].append(pool_sample(ns, dep, 7))
        rows[queries.POOL_WAITING].append(pool_sample(ns, dep, 2))
        rows[queries.POOL_KV_USAGE].append(pool_sample(ns, dep, 0.25))
    return {pool_promql(q, pools, window_s): r for q, r in rows.items()}


def healthy_tier_responses(
    routes: Sequence[str], window_s: float = WINDOW_S, sampled_at_s: float = NOW_S - 2
) -> dict[str, object]:
    return {
        tier_promql(queries.TIER_RATE, routes, window_s): [route_sample(r, 1.75) for r in routes],
        tier_promql(queries.TIER_SAMPLED_AT, routes, window_s): [
            route_sample(r, sampled_at_s) for r in routes
        ],
    }
