"""A pool's circuit-breaker caps are real admission control: overflow fails fast with 503."""

from __future__ import annotations

import secrets
import threading
from collections import Counter

import pytest
from tierscale_testbed.envoy import NameEchoUpstream, TestbedEnvoy, TierClient

from tierscale.adapters.envoy import routing

pytestmark = [pytest.mark.e2e]

HOLD_S = 3.0
"""Each admitted request stays in flight this long, so all 8 arrive while 2 are held."""


def test_requests_beyond_the_cap_get_503_without_reaching_the_pool(envoy: TestbedEnvoy) -> None:
    suffix = secrets.token_hex(3)
    upstream = NameEchoUpstream("slow", delay_s=HOLD_S).start()
    try:
        pool, tier = f"capped-{suffix}", f"gold-{suffix}"
        envoy.apply(
            routing.RoutingTable(
                tiers=(routing.TierRoute(tier, "x-slo-tier", tier, {pool: 1000}),),
                pools=(
                    routing.PoolCluster(pool, upstream.endpoints, routing.CircuitBreakerCaps(2, 1)),
                ),
            )
        )
        answers: Counter[str] = Counter()
        lock = threading.Lock()

        def one_request() -> None:
            with TierClient(envoy, tier) as client:
                answer = client.send()
            with lock:
                answers[answer] += 1

        threads = [threading.Thread(target=one_request) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        stats = envoy.process.stats()
        overflow = (
            stats[f"cluster.{pool}.upstream_rq_pending_overflow"]
            + stats[f"cluster.{pool}.upstream_rq_active_overflow"]
        )
        assert sum(answers.values()) == 8
        assert 2 <= answers["slow"] <= 3, answers
        assert answers["HTTP 503"] == 8 - answers["slow"]
        assert overflow == answers["HTTP 503"]
        assert stats[f"cluster.{pool}.upstream_rq_total"] == answers["slow"]
    finally:
        upstream.stop()
