"""In-memory stand-ins for `KubeCluster` and `ConfigMapState`, for unit tests of the loop.

They apply the same rules as the real adapter (`writers` for other writers,
`pod_removal` for which pods go, `records` for state), over plain in-memory objects, and
let a test inject what a cluster does to an operator: a 409 on the next scale, an HPA or
a ScaledObject appearing and going, a person running `kubectl scale` and later handing
the replicas back, a Deployment deleted, an API call failing, unreadable saved state.
Logical time: every change in the fake advances its clock by one second (pod creation
times break ties between pods to remove).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tierscale import records
from tierscale.adapters.kubernetes import pod_removal, writers
from tierscale.adapters.kubernetes.names import FIELD_MANAGER
from tierscale.domain.metrics import PoolReplicas
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import Tier
from tierscale.loop.actions import TierEvent
from tierscale.loop.ports import (
    EngineArgs,
    PoolView,
    PortError,
    ScaleOutcome,
    StateUnreadable,
)

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
MANIFEST_MANAGER = "kubectl-client-side-apply"


@dataclass
class FakePod:
    name: str
    ready: bool
    created_s: float
    deletion_cost: str | None = None


@dataclass
class FakeDeployment:
    namespace: str
    name: str
    uid: str
    engine: EngineArgs
    resource_version: int
    owners: list[writers.ReplicasWrite]
    pods: dict[str, FakePod] = field(default_factory=dict)
    resume_requested: bool = False
    """The `tierscale.dev/resume` annotation is set."""
    new_pods_ready: bool = True

    @property
    def replicas(self) -> int:
        return len(self.pods)

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods.values() if p.ready)


@dataclass(frozen=True)
class ScaleCall:
    pool_key: str
    replicas: int
    outcome: ScaleOutcome


class FakeCluster:
    """A `ClusterPort` over in-memory Deployments, pods, HPAs, ScaledObjects and nodes."""

    def __init__(self) -> None:
        self._clock_s = 0
        self._ids = itertools.count(1)
        self.deployments: dict[str, FakeDeployment] = {}
        self.hpas: dict[tuple[str, str], str] = {}
        """(namespace, HPA name) -> Deployment it targets."""
        self.scaled_objects: dict[tuple[str, str], str] = {}
        self.gpus_by_node: dict[str, tuple[str, int, bool]] = {}
        """node -> (gpu product label, allocatable GPUs, Ready and schedulable)."""
        self.statuses: dict[str, dict[str, Any]] = {}
        self.generations: dict[str, int] = {}
        self.events: list[TierEvent] = []
        self.scale_calls: list[ScaleCall] = []
        self._memory = writers.WriterMemory()
        self._conflict_next: set[str] = set()
        self._failures: dict[str, str] = {}

    # ------------------------------------------------------------------ the world
    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self._clock_s)

    def _step(self) -> datetime:
        self._clock_s += 1
        return self.now()

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 1,
        engine: EngineArgs | None = None,
        manager: str = MANIFEST_MANAGER,
    ) -> str:
        """A Deployment created from a manifest that sets `replicas` (owned by `manager`)."""
        self._step()
        deployment = FakeDeployment(
            namespace=namespace,
            name=name,
            uid=f"uid-{next(self._ids)}",
            engine=engine or EngineArgs(gpus_per_replica=1),
            resource_version=next(self._ids),
            owners=[writers.ReplicasWrite(manager, "")],
        )
        key = f"{namespace}/{name}"
        self.deployments[key] = deployment
        self._resize(deployment, replicas)
        return key

    def delete_deployment(self, pool_key: str) -> None:
        del self.deployments[pool_key]

    def set_ready(self, pool_key: str, ready: int) -> None:
        """Make the first `ready` pods (by name) Ready and the others not."""
        deployment = self.deployments[pool_key]
        for at, pod in enumerate(sorted(deployment.pods.values(), key=lambda p: p.name)):
            pod.ready = at < ready
        self._bump(deployment)

    def pod_names(self, pool_key: str) -> list[str]:
        return sorted(self.deployments[pool_key].pods)

    def deletion_costs(self, pool_key: str) -> dict[str, str | None]:
        return {n: p.deletion_cost for n, p in sorted(self.deployments[pool_key].pods.items())}

    def add_node(self, name: str, gpus: int, product: str = "", *, ready: bool = True) -> None:
        self.gpus_by_node[name] = (product, gpus, ready)

    def add_hpa(self, namespace: str, name: str, deployment: str) -> None:
        self.hpas[(namespace, name)] = deployment
        self._step()

    def delete_hpa(self, namespace: str, name: str) -> None:
        del self.hpas[(namespace, name)]

    def add_scaled_object(self, namespace: str, name: str, deployment: str) -> None:
        self.scaled_objects[(namespace, name)] = deployment
        self._step()

    def delete_scaled_object(self, namespace: str, name: str) -> None:
        del self.scaled_objects[(namespace, name)]

    def hpa_scales(self, pool_key: str, replicas: int) -> None:
        """The HPA controller writes replicas through /scale (manager kube-controller-manager)."""
        self._foreign_write(pool_key, replicas, "kube-controller-manager", "scale")

    def manual_scale(self, pool_key: str, replicas: int, manager: str = "kubectl") -> None:
        """A person runs `kubectl scale` (a write through /scale by another manager)."""
        self._foreign_write(pool_key, replicas, manager, "scale")

    def reapply_manifest(
        self, pool_key: str, replicas: int, manager: str = MANIFEST_MANAGER
    ) -> None:
        """Someone re-applies a manifest that sets `replicas` (written in the Deployment)."""
        self._foreign_write(pool_key, replicas, manager, "")

    def resume(self, pool_key: str) -> None:
        """A person sets `tierscale.dev/resume` on the Deployment (hands replicas back)."""
        deployment = self.deployments[pool_key]
        deployment.resume_requested = True
        self._bump(deployment)

    def owners(self, pool_key: str) -> list[str]:
        """Field managers owning the Deployment's `spec.replicas`."""
        return [w.manager for w in self.deployments[pool_key].owners]

    def conflict_on_next_scale(self, pool_key: str) -> None:
        """Someone else changes the Deployment between tierscale's read and its scale."""
        self._conflict_next.add(pool_key)

    def fail_next(self, operation: str, message: str = "injected failure") -> None:
        """The next call of `operation` (a ClusterPort method name) raises PortError."""
        self._failures[operation] = message

    # ------------------------------------------------------------------ ClusterPort
    def pools(self, tiers: Sequence[Tier]) -> Mapping[str, PoolView]:
        self._maybe_fail("pools")
        out: dict[str, PoolView] = {}
        for tier in tiers:
            key = f"{tier.namespace}/{tier.pool.deployment}"
            deployment = self.deployments.get(key)
            if deployment is None:
                out[key] = PoolView(key, False, PoolReplicas(None, None), EngineArgs())
                continue
            out[key] = PoolView(
                pool_key=key,
                exists=True,
                replicas=PoolReplicas(deployment.replicas, deployment.ready),
                engine=deployment.engine,
                other_writer=self._memory.judge(key, deployment.uid, self._evidence(deployment)),
                resource_version=str(deployment.resource_version),
            )
        return out

    def allocatable_gpus(self) -> Mapping[str, int]:
        self._maybe_fail("allocatable_gpus")
        out: dict[str, int] = {}
        for product, gpus, ready in self.gpus_by_node.values():
            if ready and gpus > 0:
                out[product] = out.get(product, 0) + gpus
        return out

    def scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        self._maybe_fail("scale")
        outcome = self._scale(pool, replicas, inflight_by_pod)
        self.scale_calls.append(ScaleCall(pool.pool_key, replicas, outcome))
        return outcome

    def write_status(self, tier: Tier, status: Mapping[str, Any]) -> None:
        self._maybe_fail("write_status")
        self.statuses[tier.key] = dict(status)

    def status_context(self, tier: Tier) -> tuple[int | None, Sequence[Mapping[str, object]]]:
        self._maybe_fail("status_context")
        status = self.statuses.get(tier.key, {})
        return self.generations.get(tier.key, 1), list(status.get("conditions", []))

    def emit_event(self, tier: Tier, event: TierEvent) -> None:
        self._maybe_fail("emit_event")
        self.events.append(event)

    # ------------------------------------------------------------------ internals
    def _scale(
        self, pool: PoolView, replicas: int, inflight_by_pod: Mapping[str, float]
    ) -> ScaleOutcome:
        if replicas < 0:
            raise PortError(f"cannot scale {pool.pool_key} to {replicas} replicas")
        deployment = self.deployments.get(pool.pool_key)
        if not pool.exists or deployment is None:
            raise PortError(f"Deployment {pool.pool_key} does not exist: nothing to scale")
        if pool.other_writer is not None:
            return ScaleOutcome.REFUSED
        version = pool.resource_version
        if deployment.resume_requested:  # take the hand-back: co-own, remove the annotation
            if self._stale(pool.pool_key, version, deployment):
                return ScaleOutcome.CONFLICT
            if not any(w.manager == FIELD_MANAGER for w in deployment.owners):
                deployment.owners.append(writers.ReplicasWrite(FIELD_MANAGER, "scale"))
            deployment.resume_requested = False
            self._memory.wrote(pool.pool_key, deployment.uid)
            self._bump(deployment)
            version = str(deployment.resource_version)
        if pool.replicas.current == replicas:
            return ScaleOutcome.UNCHANGED
        if pool.replicas.current is not None and replicas < pool.replicas.current:
            self._mark_removals(deployment, pool.replicas.current - replicas, inflight_by_pod)
        if self._stale(pool.pool_key, version, deployment):
            return ScaleOutcome.CONFLICT
        self._write(deployment, replicas, FIELD_MANAGER, "scale")
        self._memory.wrote(pool.pool_key, deployment.uid)
        return ScaleOutcome.SCALED

    def _stale(self, pool_key: str, version: str | None, deployment: FakeDeployment) -> bool:
        """The write's resourceVersion precondition fails (409)."""
        if pool_key in self._conflict_next:
            self._conflict_next.discard(pool_key)
            self._bump(deployment)
        return version != str(deployment.resource_version)

    def _mark_removals(
        self, deployment: FakeDeployment, count: int, inflight_by_pod: Mapping[str, float]
    ) -> None:
        pods = [
            pod_removal.PodInfo(p.name, p.ready, p.created_s, p.deletion_cost)
            for p in deployment.pods.values()
        ]
        removals = pod_removal.choose_removals(pods, count, inflight_by_pod)
        for name, cost in pod_removal.cost_patches(pods, removals).items():
            deployment.pods[name].deletion_cost = cost

    def _foreign_write(self, pool_key: str, replicas: int, manager: str, subresource: str) -> None:
        deployment = self.deployments[pool_key]
        if replicas != deployment.replicas:  # an unchanged value moves no ownership
            self._write(deployment, replicas, manager, subresource)

    def _write(self, deployment: FakeDeployment, replicas: int, manager: str, sub: str) -> None:
        """An Update of spec.replicas: its writer becomes the only owner."""
        self._step()
        deployment.owners = [writers.ReplicasWrite(manager, sub)]
        self._resize(deployment, replicas)

    def _resize(self, deployment: FakeDeployment, replicas: int) -> None:
        """What the ReplicaSet does: add pods, or remove not-Ready pods, then the lowest
        deletion cost, then the newest."""
        while deployment.replicas < replicas:
            name = f"{deployment.name}-{next(self._ids):05d}"
            deployment.pods[name] = FakePod(name, deployment.new_pods_ready, self._clock_s)
        if deployment.replicas > replicas:
            ranked = sorted(
                deployment.pods.values(),
                key=lambda p: (p.ready, _cost(p.deletion_cost), -p.created_s, p.name),
            )
            for pod in ranked[: deployment.replicas - replicas]:
                del deployment.pods[pod.name]
        self._bump(deployment)

    def _bump(self, deployment: FakeDeployment) -> None:
        deployment.resource_version = next(self._ids)

    def _evidence(self, deployment: FakeDeployment) -> writers.WriterEvidence:
        ns = deployment.namespace
        return writers.WriterEvidence(
            namespace=ns,
            deployment=deployment.name,
            replicas=deployment.replicas,
            scaled_objects=_targeting(self.scaled_objects, ns, deployment.name),
            hpas=_targeting(self.hpas, ns, deployment.name),
            owners=tuple(deployment.owners),
            resume_requested=deployment.resume_requested,
        )

    def _maybe_fail(self, operation: str) -> None:
        message = self._failures.pop(operation, None)
        if message is not None:
            raise PortError(f"{operation}: {message}")


def _targeting(objects: Mapping[tuple[str, str], str], ns: str, name: str) -> tuple[str, ...]:
    return tuple(sorted(o for (o_ns, o), target in objects.items() if (o_ns, target) == (ns, name)))


def _cost(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


class FakeState:
    """A `StatePort` in memory that stores the same text `ConfigMapState` would."""

    def __init__(self) -> None:
        self.text_by_model: dict[str, str] = {}
        self.saves = 0
        self._failures: dict[str, str] = {}

    def load(self, model: str) -> PlannerState | None:
        self._maybe_fail("load")
        text = self.text_by_model.get(model)
        if text is None:
            return None
        try:
            return records.loads(PlannerState, text)
        except records.RecordError as err:
            raise StateUnreadable(
                f"planner state of model {model!r} cannot be read: {err}"
            ) from err

    def save(self, model: str, state: PlannerState) -> None:
        self._maybe_fail("save")
        self.text_by_model[model] = records.dumps(state)
        self.saves += 1

    def corrupt(self, model: str, text: str) -> None:
        """Replace the stored text (a newer schema version, a hand edit, garbage)."""
        self.text_by_model[model] = text

    def fail_next(self, operation: str, message: str = "injected failure") -> None:
        self._failures[operation] = message

    def _maybe_fail(self, operation: str) -> None:
        message = self._failures.pop(operation, None)
        if message is not None:
            raise PortError(f"{operation}: {message}")
