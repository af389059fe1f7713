"""Which SLOTiers are decided together, in what order, and which one runs the group's tick.

Pure functions over what the kopf index holds (`TierEntry` per SLOTier). A model group is
every SLOTier naming one served model, across the namespaces the operator watches; its
tiers are planned oldest first (creation time, then namespace/name), which is also the
order that decides which of two tiers naming one Deployment owns it. The oldest tier is
the group's *leader*: only its timer runs the group's tick, so each group gets exactly
one decision per interval however many tiers it has. When the leader is deleted, the
next oldest takes over on its own timer: one tick comes early or late, nothing else
changes (the tick is level-triggered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tierscale.api import codec
from tierscale.domain.tiers import Pool, Slo, Tier

INVALID_GROUP_PREFIX = "invalid:"
"""Group key of an SLOTier whose spec does not parse: it is its own group."""


@dataclass(frozen=True, slots=True)
class TierEntry:
    """One SLOTier as the index keeps it: parsed once per change, not once per tick."""

    namespace: str
    name: str
    created: str
    """metadata.creationTimestamp (RFC 3339, so string order is time order)."""
    tier: Tier | None
    problem: str | None = None
    """Why the spec does not parse (the tier is then None)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def group(self) -> str:
        return self.tier.model if self.tier is not None else INVALID_GROUP_PREFIX + self.key

    @property
    def order(self) -> tuple[str, str, str]:
        return (self.created, self.namespace, self.name)


def entry_from_body(body: Mapping[str, object]) -> TierEntry:
    """Parse an SLOTier resource; a spec that does not parse is kept with its problem."""
    metadata = body.get("metadata")
    meta = metadata if isinstance(metadata, Mapping) else {}
    namespace = str(meta.get("namespace") or codec.DEFAULT_NAMESPACE)
    name = str(meta.get("name") or "")
    created = str(meta.get("creationTimestamp") or "")
    try:
        tier = codec.to_tier(body)
    except codec.SpecError as err:
        problems = "; ".join(str(e) for e in err.errors)
        return TierEntry(namespace, name, created, None, f"invalid SLOTier spec: {problems}")
    return TierEntry(namespace, name, created, tier)


def ordered(entries: Iterable[TierEntry]) -> list[TierEntry]:
    return sorted(entries, key=lambda e: e.order)


def leader(entries: Iterable[TierEntry]) -> str | None:
    """Key of the SLOTier whose timer runs the group's tick (the oldest)."""
    first = min(entries, key=lambda e: e.order, default=None)
    return None if first is None else first.key


def tiers_of(entries: Iterable[TierEntry]) -> list[Tier]:
    """The group's parsed tiers, oldest first (the order the planner resolves owners in)."""
    return [e.tier for e in ordered(entries) if e.tier is not None]


def placeholder_tier(namespace: str, name: str) -> Tier:
    """A Tier that only names an SLOTier, for writing the status of one that does not
    parse (the Kubernetes adapter addresses an SLOTier by namespace and name alone)."""
    return Tier(name, namespace, "", Slo(1.0, 1.0), Pool(""))
