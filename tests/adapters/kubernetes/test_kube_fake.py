"""The fake cluster and state behave as the port promises, under injected faults, with the
same rules as the real adapter (so loop tests on the fake mean something)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierscale import records
from tierscale.adapters.kubernetes.fake import FakeCluster, FakeState
from tierscale.adapters.kubernetes.names import DELETION_COST_REMOVE
from tierscale.domain.plans import PlannerState
from tierscale.domain.tiers import Pool, Slo, Tier
from tierscale.loop.ports import PoolView, PortError, ScaleOutcome, StateUnreadable

TIER = Tier(name="gold", namespace="llm", model="m", slo=Slo(0.3, 0.03), pool=Pool("gold-vllm"))
KEY = "llm/gold-vllm"


def view(cluster: FakeCluster) -> PoolView:
    return cluster.pools([TIER])[KEY]


def test_scale_up_and_down_removes_the_least_busy_pods() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    assert cluster.scale(view(cluster), 4, {}) is ScaleOutcome.SCALED
    pods = cluster.pod_names(KEY)
    assert len(pods) == 4 and view(cluster).replicas.current == 4
    inflight = {pods[0]: 5.0, pods[1]: 0.0, pods[2]: 3.0}  # pods[3]: unknown
    assert cluster.scale(view(cluster), 2, inflight) is ScaleOutcome.SCALED
    assert cluster.pod_names(KEY) == [pods[0], pods[3]]
    assert cluster.scale(view(cluster), 2, {}) is ScaleOutcome.UNCHANGED


def test_marks_are_moved_not_accumulated() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=3)
    a, b, c = cluster.pod_names(KEY)
    cluster.conflict_on_next_scale(KEY)
    assert cluster.scale(view(cluster), 2, {a: 0.0, b: 1.0, c: 2.0}) is ScaleOutcome.CONFLICT
    assert cluster.deletion_costs(KEY) == {a: DELETION_COST_REMOVE, b: None, c: None}
    assert cluster.scale(view(cluster), 2, {a: 9.0, b: 0.0, c: 2.0}) is ScaleOutcome.SCALED
    assert cluster.pod_names(KEY) == [a, c]
    assert cluster.deletion_costs(KEY) == {a: None, c: None}


def test_a_stale_view_gets_a_conflict_and_nothing_is_written() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    stale = view(cluster)
    cluster.set_ready(KEY, 1)  # a status change: a new resourceVersion
    assert cluster.scale(stale, 3, {}) is ScaleOutcome.CONFLICT
    assert view(cluster).replicas.current == 2
    assert cluster.scale(view(cluster), 3, {}) is ScaleOutcome.SCALED


def test_hpa_conflict_and_resume_when_it_is_gone() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    cluster.scale(view(cluster), 3, {})
    cluster.add_hpa("llm", "gold-hpa", "gold-vllm")
    cluster.hpa_scales(KEY, 5)
    held = view(cluster)
    assert held.other_writer is not None and held.other_writer.describe().startswith(
        "HorizontalPodAutoscaler gold-hpa"
    )
    assert cluster.scale(held, 2, {}) is ScaleOutcome.REFUSED
    assert view(cluster).replicas.current == 5
    cluster.delete_hpa("llm", "gold-hpa")
    back = view(cluster)
    assert back.other_writer is None
    assert cluster.scale(back, 2, {}) is ScaleOutcome.SCALED


def test_manual_scale_holds_until_the_resume_annotation() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    cluster.scale(view(cluster), 3, {})
    cluster.manual_scale(KEY, 6)
    for _ in range(5):  # held, tick after tick
        held = view(cluster)
        assert held.other_writer is not None and held.other_writer.name == "kubectl"
        assert cluster.scale(held, 3, {}) is ScaleOutcome.REFUSED
    cluster.resume(KEY)
    assert cluster.scale(view(cluster), 3, {}) is ScaleOutcome.SCALED
    assert not cluster.deployments[KEY].resume_requested  # a one-shot token
    cluster.manual_scale(KEY, 1)
    assert view(cluster).other_writer is not None


def test_a_hand_back_at_the_planned_replicas_is_claimed_and_survives_a_restart() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    cluster.manual_scale(KEY, 4)
    cluster.resume(KEY)
    assert cluster.scale(view(cluster), 4, {}) is ScaleOutcome.UNCHANGED
    assert cluster.owners(KEY) == ["kubectl", "tierscale"]  # co-owner, value unchanged
    assert not cluster.deployments[KEY].resume_requested
    assert view(cluster).other_writer is None
    cluster._memory = type(cluster._memory)()  # a restarted adapter forgets everything
    assert view(cluster).other_writer is None


def test_a_reapplied_manifest_after_tierscale_wrote_is_a_conflict() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2, manager="helm")
    assert view(cluster).other_writer is None  # the creator's replicas are adopted
    cluster.scale(view(cluster), 4, {})
    cluster.reapply_manifest(KEY, 2, manager="helm")
    other = view(cluster).other_writer
    assert other is not None and other.describe().startswith("FieldManager helm")


def test_scaled_object_conflict() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    cluster.add_scaled_object("llm", "gold-so", "gold-vllm")
    other = view(cluster).other_writer
    assert other is not None and other.kind == "ScaledObject"
    cluster.delete_scaled_object("llm", "gold-so")
    assert view(cluster).other_writer is None


def test_deleted_deployment_and_injected_failures() -> None:
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    live = view(cluster)
    cluster.delete_deployment(KEY)
    gone = view(cluster)
    assert not gone.exists and gone.replicas.current is None
    with pytest.raises(PortError, match="does not exist"):
        cluster.scale(gone, 3, {})
    with pytest.raises(PortError, match="does not exist"):
        cluster.scale(live, 3, {})
    cluster.fail_next("pools", "API server unreachable")
    with pytest.raises(PortError, match="unreachable"):
        cluster.pools([TIER])
    assert not cluster.pools([TIER])[KEY].exists  # one failure only


def test_status_events_and_gpus() -> None:
    cluster = FakeCluster()
    cluster.add_node("n1", 8, "H100")
    cluster.add_node("n2", 8, "H100", ready=False)
    cluster.add_node("n3", 4, "L4")
    assert cluster.allocatable_gpus() == {"H100": 8, "L4": 4}
    cluster.write_status(TIER, {"conditions": [{"type": "Ready", "status": "True"}]})
    assert cluster.status_context(TIER) == (1, [{"type": "Ready", "status": "True"}])


# ----------------------------------------------------------------------------- never flaps

EXTERNAL = st.sampled_from(["hpa+", "hpa-", "hpa-scales", "manual", "resume", "reapply", "ready"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            EXTERNAL, st.lists(st.integers(min_value=0, max_value=6), min_size=2, max_size=5)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_verdict_only_moves_when_someone_else_acts(
    script: list[tuple[str, list[int]]],
) -> None:
    """Between two actions of others, however tierscale scales, the verdict is constant
    and tierscale writes nothing while it names another writer."""
    cluster = FakeCluster()
    cluster.add_deployment("llm", "gold-vllm", replicas=2)
    for action, targets in script:
        match action:
            case "hpa+":
                cluster.add_hpa("llm", "h", "gold-vllm")
            case "hpa-":
                cluster.hpas.pop(("llm", "h"), None)
            case "hpa-scales":
                cluster.hpa_scales(KEY, (view(cluster).replicas.current or 0) + 1)
            case "manual":
                cluster.manual_scale(KEY, (view(cluster).replicas.current or 0) + 2)
            case "resume":
                cluster.resume(KEY)
            case "reapply":
                cluster.reapply_manifest(KEY, 1)
            case "ready":
                cluster.set_ready(KEY, 0)
        verdicts = set()
        for target in targets:
            pool = view(cluster)
            verdicts.add(pool.other_writer)
            outcome = cluster.scale(pool, target, {})
            if pool.other_writer is not None:
                assert outcome is ScaleOutcome.REFUSED
        assert len(verdicts) == 1, (action, verdicts)


# ----------------------------------------------------------------------------- state


def test_fake_state_round_trips_and_reports_unreadable_content() -> None:
    state = FakeState()
    assert state.load("m") is None
    saved = PlannerState(last_plan_at_s=12.0, bias_by_tier={"llm/gold": 1.2})
    state.save("m", saved)
    assert state.load("m") == saved
    newer = state.text_by_model["m"].replace(
        f'"schema_version":{records.SCHEMA_VERSION}', '"schema_version":99'
    )
    state.corrupt("m", newer)
    with pytest.raises(StateUnreadable, match="schema version 99"):
        state.load("m")
    state.corrupt("m", "{not json")
    with pytest.raises(StateUnreadable, match="not valid JSON"):
        state.load("m")
    state.fail_next("load")
    with pytest.raises(PortError) as raised:
        state.load("m")
    assert not isinstance(raised.value, StateUnreadable)
