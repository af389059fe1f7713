"""The kopf handlers of `tierscale run`: thin, all the work is in `runtime`.

- Indices: `slotiers` (every SLOTier, parsed once per change, keyed by its model group
  and by its own key) and `deployment_ready` (every Deployment's ready replicas, which
  also feeds `ReadyTimes`: when each pool's newest replica became Ready).
- One timer per SLOTier, every control interval; only the oldest tier of a model group
  (its leader, `groups.leader`) runs the group's tick, in a worker thread. So each group
  gets exactly one decision per interval, all its tiers jointly.
- Peering: kopf pauses a replica when a peer with a higher priority is alive; pausing
  stops every timer (kopf's daemon killer sets their `stopped` flag and waits
  `shutdown_grace_s` for a running tick to finish), and the re-listing after the peer is
  gone starts them again. So exactly one replica ticks; priorities are random per
  replica (kopf freezes all replicas that share a priority).
- Shutdown: kopf stops the timers the same way, then the cleanup handler waits for the
  running ticks (at most `shutdown_grace_s`).

kopf adds its finalizer (`FINALIZER`) to each SLOTier, because a timer must be stopped
before its object goes; with the operator down, deleting an SLOTier waits for it (or
for someone to remove the finalizer by hand).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from tierscale.api import models as api_models
from tierscale.api import status as status_api
from tierscale.domain.reasons import Reason
from tierscale.handlers import groups
from tierscale.handlers.logs import FIELDS_ATTR
from tierscale.handlers.runtime import ReadyTimes, Runtime
from tierscale.loop.actions import TierEvent
from tierscale.loop.ports import PortError

FINALIZER: Final = "tierscale.dev/operator"
GROUP_KEY: Final = "group"
TIER_KEY: Final = "tier"

log = logging.getLogger("tierscale.handlers")

IndexKey = tuple[str, str]


def settings_for(
    *,
    peering_name: str,
    priority: int,
    lifetime_s: int,
    standalone: bool,
    clusterwide: bool,
    grace_s: float,
) -> kopf.OperatorSettings:
    """kopf's settings for tierscale (see module doc)."""
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # tierscale's own Events only, on change only
    settings.persistence.finalizer = FINALIZER
    settings.peering.name = peering_name
    settings.peering.priority = priority
    settings.peering.lifetime = lifetime_s
    settings.peering.mandatory = not standalone
    settings.peering.standalone = standalone
    settings.peering.clusterwide = clusterwide
    settings.peering.stealth = True
    settings.background.instant_exit_timeout = grace_s
    settings.scanning.disabled = True  # no watch on CRDs and namespaces; fewer RBAC rules
    return settings


def build_registry(
    runtime: Runtime, ready_times: ReadyTimes, interval_s: float
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def started(**_: Any) -> None:
        runtime.loop = asyncio.get_running_loop()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.index(
        api_models.GROUP, api_models.VERSION, api_models.PLURAL, id="slotiers", registry=registry
    )
    def slotiers(body: kopf.Body, **_: Any) -> dict[IndexKey, groups.TierEntry]:
        entry = groups.entry_from_body(body)
        return {(GROUP_KEY, entry.group): entry, (TIER_KEY, entry.key): entry}

    @kopf.index("apps", "v1", "deployments", id="deployment_ready", registry=registry)
    def deployment_ready(
        namespace: str | None, name: str, status: kopf.Status, **_: Any
    ) -> dict[str, int]:
        key = f"{namespace}/{name}"
        ready = int(status.get("readyReplicas") or 0)
        ready_times.seen(key, ready)
        return {key: ready}

    @kopf.timer(
        api_models.GROUP,
        api_models.VERSION,
        api_models.PLURAL,
        id="decide",
        interval=interval_s,
        sharp=True,
        backoff=interval_s,
        registry=registry,
    )
    async def decide(namespace: str | None, name: str, body: kopf.Body, **kwargs: Any) -> None:
        slotiers: kopf.Index[IndexKey, groups.TierEntry] = kwargs["slotiers"]
        stopped: kopf.DaemonStopped = kwargs["stopped"]
        key = f"{namespace}/{name}"
        mine = next(iter(slotiers.get((TIER_KEY, key), ())), None)
        if mine is None or stopped or runtime.stopping:
            return
        loop = asyncio.get_running_loop()
        try:
            if mine.tier is None:
                await loop.run_in_executor(runtime.executor, report_invalid, runtime, mine, body)
                return
            members = list(slotiers.get((GROUP_KEY, mine.group), ()))
            if groups.leader(members) != key:
                return
            runtime.set_live_groups(
                [g for kind, g in slotiers if kind == GROUP_KEY and not g.startswith("invalid:")]
            )
            await loop.run_in_executor(
                runtime.executor, runtime.run_group, mine.group, groups.tiers_of(members)
            )
        except Exception:  # a failed tick is logged and retried next interval
            log.exception("tick failed", extra={FIELDS_ATTR: {"model": mine.group}})

    @kopf.on.cleanup(registry=registry)
    async def finish_running_ticks(**_: Any) -> None:
        grace_s = runtime.config.shutdown_grace_s
        done = await asyncio.get_running_loop().run_in_executor(None, runtime.shutdown, grace_s)
        log.info(
            "shutdown: running ticks finished" if done else "shutdown: a tick was still running",
            extra={FIELDS_ATTR: {"grace_s": grace_s}},
        )

    return registry


def report_invalid(runtime: Runtime, entry: groups.TierEntry, body: Mapping[str, Any]) -> None:
    """InvalidSpec status and one Warning Event for an SLOTier whose spec does not parse,
    written only when the problem changed (the status already saying so is left alone)."""
    problem = entry.problem or "invalid SLOTier spec"
    status = body.get("status") or {}
    last = (status.get("lastDecision") or {}).get("message")
    if last == problem:
        return
    tier = groups.placeholder_tier(entry.namespace, entry.name)
    cluster = runtime.ports.cluster
    try:
        generation = (body.get("metadata") or {}).get("generation")
        new_status = status_api.invalid_spec_status(
            problem,
            now=datetime.fromtimestamp(runtime.clock(), UTC),
            generation=int(generation) if generation is not None else None,
            previous_conditions=list(status.get("conditions") or []),
        )
        cluster.write_status(tier, new_status)
        cluster.emit_event(tier, TierEvent(entry.key, Reason.INVALID_SPEC, problem, True))
    except PortError as err:
        runtime.exporter.adapter_errors.labels(port="kubernetes").inc()
        log.warning(f"InvalidSpec status of {entry.key} not written: {err}")
