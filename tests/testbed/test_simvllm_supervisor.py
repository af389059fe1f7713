"""Reconciling pod views into servers: start on Ready, drain on termination, publish."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from tierscale_testbed.simvllm import discovery, pod_server, pod_watch, supervisor

from tierscale_predictor import profiles


def _view(uid: str, *, ready: bool = True, terminating: bool = False) -> pod_watch.PodView:
    return pod_watch.PodView(
        uid=uid,
        namespace="ns",
        name=f"pool-abc-{uid}",
        deployment="pool",
        tier="gold",
        model_name="served",
        profile=None,
        ready=ready,
        terminating=terminating,
    )


async def test_pods_are_served_while_ready_and_closed_after_termination(tmp_path: Path) -> None:
    config = pod_server.PodConfig(
        model_name="default", profile=profiles.load_profile("llama-3.1-8b-h100")
    )
    sup = supervisor.Supervisor(discovery_dir=tmp_path, default_config=config)
    assert discovery.read_pools(tmp_path) == {}

    await sup.reconcile([_view("a"), _view("b"), _view("c", ready=False)])
    pool = discovery.read_pools(tmp_path)["ns/pool"]
    assert sorted(e.pod for e in pool.endpoints) == ["pool-abc-a", "pool-abc-b"]
    assert pool.model_name == "served"

    await sup.reconcile([_view("a"), _view("b", terminating=True)])
    assert [e.pod for e in discovery.read_pools(tmp_path)["ns/pool"].endpoints] == ["pool-abc-a"]
    for _ in range(100):  # b has nothing in flight: its port closes almost at once
        if len(discovery.read_targets(tmp_path)) == 1:
            break
        await asyncio.sleep(0.02)
    assert [t.pod for t in discovery.read_targets(tmp_path)] == ["pool-abc-a"]

    await sup.shutdown()
    assert discovery.read_targets(tmp_path) == []


async def test_a_pod_with_an_unknown_profile_is_skipped_not_fatal(tmp_path: Path) -> None:
    profile = profiles.load_profile("llama-3.1-8b-h100")
    config = pod_server.PodConfig(model_name="default", profile=profile)
    sup = supervisor.Supervisor(discovery_dir=tmp_path, default_config=config)
    broken = dataclasses.replace(_view("x"), profile="no-such-profile")
    await sup.reconcile([broken, _view("a")])
    assert [t.pod for t in discovery.read_targets(tmp_path)] == ["pool-abc-a"]
    await sup.shutdown()


async def test_a_pod_is_served_with_its_containers_engine_flags(tmp_path: Path) -> None:
    config = pod_server.PodConfig(
        model_name="default", profile=profiles.load_profile("llama-3.1-8b-h100")
    )
    sup = supervisor.Supervisor(discovery_dir=tmp_path, default_config=config)
    flagged = dataclasses.replace(
        _view("a"), max_model_len=16384, max_num_seqs=8, max_num_batched_tokens=2048
    )
    await sup.reconcile([flagged, _view("b")])
    try:
        served = {uid: s.server.config for uid, s in sup._served.items()}
        assert (
            served["a"].max_model_len,
            served["a"].max_num_seqs,
            served["a"].max_num_batched_tokens,
        ) == (16384, 8, 2048)
        assert served["b"] == dataclasses.replace(config, model_name="served")  # defaults
    finally:
        await sup.shutdown()
