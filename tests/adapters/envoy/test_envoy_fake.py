"""The in-memory writer behaves like the real ones from the caller's side."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tierscale.adapters.envoy import fake, routing, validation


def test_applied_tables_are_recorded_in_order(
    two_pool_table: Callable[[int], routing.RoutingTable],
) -> None:
    writer = fake.InMemoryRoutingWriter()
    writer.apply(two_pool_table(100))
    writer.apply(two_pool_table(900))
    assert writer.current == two_pool_table(900)
    assert len(writer.applied) == 2


def test_a_rejection_keeps_the_last_good_table_live(
    two_pool_table: Callable[[int], routing.RoutingTable],
) -> None:
    writer = fake.InMemoryRoutingWriter()
    writer.apply(two_pool_table(100))
    writer.reject_next = "unknown cluster 'x'"
    with pytest.raises(validation.EnvoyConfigRejected, match="unknown cluster 'x'"):
        writer.apply(two_pool_table(900))
    assert writer.current == two_pool_table(100)
    assert writer.rejections == ["unknown cluster 'x'"]
    writer.apply(two_pool_table(900))
    assert writer.current == two_pool_table(900)
