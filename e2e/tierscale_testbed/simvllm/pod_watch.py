"""Which vLLM pods exist and whether they should serve, read from the Kubernetes API.

Level-triggered: a watch on the pods only *kicks* a full re-list, and the list is what the
supervisor reconciles against. A missed or reordered watch event (timeouts, 410 Gone)
then costs a little latency, never a wrong state; a periodic re-list bounds even that.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

DEFAULT_SELECTOR = "app.kubernetes.io/component=vllm"
TIER_LABEL = "tierscale.dev/tier"
MODEL_LABEL = "tierscale.dev/model"  # label values cannot hold "/": prefer the annotation
MODEL_ANNOTATION = "tierscale.dev/served-model-name"
PROFILE_ANNOTATION = "tierscale.dev/sim-profile"


@dataclass(frozen=True, slots=True)
class PodView:
    """What the simulator needs to know about one pod."""

    uid: str
    namespace: str
    name: str
    deployment: str
    tier: str
    model_name: str | None  # model annotation, else label; None: the simulator's default
    profile: str | None  # from the sim-profile annotation; None: the default profile
    ready: bool
    terminating: bool
    max_model_len: int | None = None
    """The vllm container's engine flags (None: not given, the server's default)."""
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None

    @property
    def should_serve(self) -> bool:
        return self.ready and not self.terminating


def owning_deployment(pod: Mapping[str, Any]) -> str:
    """The Deployment behind a pod: its ReplicaSet owner's name minus the template hash.

    A Deployment's ReplicaSet is named ``<deployment>-<pod-template-hash>``. A pod without
    a ReplicaSet owner is its own "deployment" (a bare pod still gets a pool).
    """
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet":
            rs_name = str(ref.get("name", ""))
            template_hash = labels.get("pod-template-hash")
            if template_hash and rs_name.endswith(f"-{template_hash}"):
                return rs_name[: -len(template_hash) - 1]
            return rs_name.rsplit("-", 1)[0]
    return str(meta.get("name", ""))


def _is_ready(status: Mapping[str, Any]) -> bool:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def pod_view(pod: Mapping[str, Any]) -> PodView:
    """Parse a pod in its JSON (camelCase) form."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    status = pod.get("status") or {}
    return PodView(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        deployment=owning_deployment(pod),
        tier=str(labels.get(TIER_LABEL, "")),
        model_name=annotations.get(MODEL_ANNOTATION) or labels.get(MODEL_LABEL),
        profile=annotations.get(PROFILE_ANNOTATION),
        ready=_is_ready(status) and status.get("phase") == "Running",
        terminating=meta.get("deletionTimestamp") is not None,
        **engine_flags(pod),
    )


_FLAGS = {
    "--max-model-len": "max_model_len",
    "--max-num-seqs": "max_num_seqs",
    "--max-num-batched-tokens": "max_num_batched_tokens",
}
_HUMAN = re.compile(r"(\d+(?:\.\d+)?)([kKmMgG])")
_MULTIPLIER = {"k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}


def engine_flags(pod: Mapping[str, Any]) -> dict[str, int]:
    """The engine flags the pod's vLLM container is started with, as vLLM reads them.

    The container named `vllm`, else the first; its `command` and `args` (a shell string
    split as a shell would); `--flag N` or `--flag=N`, dashes or underscores, the last
    occurrence winning; values in vLLM's human-readable form (`16k` = 16,000, `16K` =
    16,384). A pool of the testbed thereby serves with what its Deployment declares,
    as a real vLLM pod would. Unparseable values are left out (the server's default).
    """
    containers = ((pod.get("spec") or {}).get("containers")) or []
    named = [c for c in containers if c.get("name") == "vllm"] or containers[:1]
    if not named:
        return {}
    words: list[str] = []
    for token in [*(named[0].get("command") or []), *(named[0].get("args") or [])]:
        text = str(token)
        words.extend(shlex.split(text) if any(ch.isspace() for ch in text) else [text])
    out: dict[str, int] = {}
    for at, word in enumerate(words):
        flag, eq, value = word.partition("=")
        field = _FLAGS.get("--" + flag[2:].replace("_", "-")) if flag.startswith("--") else None
        if field is None or (not eq and at + 1 >= len(words)):
            continue
        number = _tokens(value if eq else words[at + 1])
        if number is not None:
            out[field] = number
    return out


def _tokens(text: str) -> int | None:
    match = _HUMAN.fullmatch(text.strip())
    try:
        if match is None:
            number = int(text.strip())
        elif match.group(2).isupper():
            number = int(match.group(1)) * _MULTIPLIER[match.group(2)]
        else:
            number = int(float(match.group(1)) * _MULTIPLIER[match.group(2)])
    except ValueError:
        return None
    return number if number > 0 else None


class PodLister:
    """Lists and watches pods matching a label selector, in one namespace or all."""

    def __init__(self, kubeconfig: Path, *, namespace: str | None, selector: str) -> None:
        self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)
        )
        self._core = client.CoreV1Api(self._api_client)
        self._namespace = namespace
        self._selector = selector
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None

    def list_pods(self) -> list[PodView]:
        """Blocking: one list call, parsed."""
        if self._namespace:
            raw = self._core.list_namespaced_pod(self._namespace, label_selector=self._selector)
        else:
            raw = self._core.list_pod_for_all_namespaces(label_selector=self._selector)
        items = self._api_client.sanitize_for_serialization(raw).get("items") or []
        return [pod_view(item) for item in items]

    def watch_kicks(self, loop: asyncio.AbstractEventLoop, kick: asyncio.Event) -> None:
        """Blocking (run in a thread): set ``kick`` on every pod event until ``close()``."""
        while not self._stop.is_set():
            self._watch = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                if self._namespace:
                    stream = self._watch.stream(  # type: ignore[no-untyped-call]
                        self._core.list_namespaced_pod,
                        self._namespace,
                        label_selector=self._selector,
                        timeout_seconds=10,
                    )
                else:
                    stream = self._watch.stream(  # type: ignore[no-untyped-call]
                        self._core.list_pod_for_all_namespaces,
                        label_selector=self._selector,
                        timeout_seconds=10,
                    )
                for _ in stream:
                    loop.call_soon_threadsafe(kick.set)
            except Exception:  # any watch failure only means "re-list later"
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            self._api_client.close()
