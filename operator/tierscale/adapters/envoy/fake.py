"""In-memory `RoutingWriter` for unit tests and the simulator.

It renders every table (rendering is pure and cheap) so a table that cannot be turned into
Envoy config fails here as it would in production; it does not run Envoy.
"""

from __future__ import annotations

from tierscale.adapters.envoy import routing, validation, xds

_LAYOUT = xds.XdsLayout(lds_dir="/fake/lds", cds_dir="/fake/cds", rds_dir="/fake/rds")


class InMemoryRoutingWriter:
    def __init__(self) -> None:
        self.applied: list[routing.RoutingTable] = []
        self.rejections: list[str] = []
        self.reject_next: str | None = None
        """Set to a reason to make the next `apply` fail like an Envoy rejection."""

    @property
    def current(self) -> routing.RoutingTable | None:
        """The last table that went live."""
        return self.applied[-1] if self.applied else None

    def apply(self, table: routing.RoutingTable) -> None:
        xds.render(table, _LAYOUT, xds.ListenerSettings())
        if self.reject_next is not None:
            reason, self.reject_next = self.reject_next, None
            self.rejections.append(reason)
            raise validation.EnvoyConfigRejected(reason)
        self.applied.append(table)
