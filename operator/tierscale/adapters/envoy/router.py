"""`EnvoyRouter`: the `RouterPort` over the routing ConfigMap Envoy mounts.

One call per model group and tick: the group's `RoutingIntent` becomes its routes and
clusters (`intent_routing`), merged into the live table beside the other groups' parts
(`ConfigMapRoutingWriter.apply_group`). Outcomes:

- nothing changed: `UNCHANGED` (no validation, no write: a steady tick costs one GET);
- new clusters: `STAGED` first, routes on a later tick once they had time to load;
- Envoy refused the config (`envoy --mode validate`): `RoutesRejected` carrying what
  Envoy said, nothing written, and the live routing keeps serving;
- the API server could not be read or written, or another writer changed the ConfigMap
  in between (409): `PortError`, and the next tick tries again.

Calls are serialised (one lock): the ticks of several groups run in parallel threads,
and each is a read-modify-write of the same ConfigMap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from tierscale.adapters.envoy import intent_routing, routing, validation
from tierscale.adapters.envoy.configmap_writer import ConfigMapRoutingWriter, RoutingStateUnreadable
from tierscale.domain.tiers import Tier
from tierscale.loop.actions import RoutingIntent
from tierscale.loop.ports import PortError, RouteOutcome, RoutesRejected


class EnvoyRouter:
    def __init__(
        self,
        writer: ConfigMapRoutingWriter,
        endpoints: intent_routing.EndpointPolicy,
        live_groups: Callable[[], Collection[str]] | None = None,
    ) -> None:
        """`live_groups`: the model groups that exist now (their routes are kept; stored
        routes of any other group are dropped); None keeps every stored group."""
        self._writer = writer
        self._endpoints = endpoints
        self._live_groups = live_groups
        self._lock = threading.Lock()

    def apply(self, routing_intent: RoutingIntent, tiers: Sequence[Tier]) -> RouteOutcome:
        if not tiers:
            return RouteOutcome.UNCHANGED
        group = tiers[0].model
        try:
            owned = intent_routing.group_routing(routing_intent, tiers, self._endpoints)
        except routing.InvalidRoutingTable as err:
            raise RoutesRejected(f"tierscale refused its own routing for {group!r}: {err}") from err
        with self._lock:
            live = set(self._live_groups()) | {group} if self._live_groups is not None else None
            try:
                published = self._writer.apply_group(group, owned, live)
            except validation.EnvoyConfigRejected as err:
                raise RoutesRejected(f"Envoy rejected the routing config: {err.reason}") from err
            except routing.InvalidRoutingTable as err:
                raise RoutesRejected(f"the merged routing table is invalid: {err}") from err
            except ApiException as err:
                what = "changed by another writer (409)" if err.status == 409 else "not writable"
                raise PortError(
                    f"{self._writer.where} {what}: HTTP {err.status} {err.reason}"
                ) from err
            except (HTTPError, OSError, RoutingStateUnreadable) as err:
                raise PortError(f"{self._writer.where}: {err}") from err
        if published is None:
            return RouteOutcome.UNCHANGED
        if published is routing.Publication.STAGED:
            return RouteOutcome.STAGED
        return RouteOutcome.PUBLISHED
