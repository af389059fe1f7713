"""Names both sides of a contract must agree on: Envoy writes them, Prometheus reads them back.

Envoy's Prometheus tag extraction splits stat names at dots, so a dot (or a slash) in a
cluster name or route `stat_prefix` would corrupt the `envoy_cluster_name` /
`envoy_route` labels. Kubernetes names never contain `_`, so `_` joins parts safely.
"""

from __future__ import annotations

import re

from tierscale.domain.tiers import Tier

_UNSAFE_STAT_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def stat_safe(name: str) -> str:
    """A name usable as an Envoy cluster name or stat prefix."""
    return _UNSAFE_STAT_CHARS.sub("-", name)


def pool_key(tier: Tier) -> str:
    """`namespace/deployment`: how both shells and every adapter name a tier's pool."""
    return f"{tier.namespace}/{tier.pool.deployment}"


def cluster_name(namespace: str, deployment: str) -> str:
    """Envoy cluster name of the pool served by one Deployment (`envoy_cluster_name`)."""
    return stat_safe(f"{namespace}_{deployment}")


def tier_stat_name(namespace: str, tier: str) -> str:
    """Route name and stat prefix of one tier (`envoy_route` in `/stats/prometheus`)."""
    return stat_safe(f"{namespace}_{tier}")
