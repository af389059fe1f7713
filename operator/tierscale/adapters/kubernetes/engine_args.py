"""A pool's vLLM engine arguments, read from its Deployment's pod template.

The planner needs the batch limits a replica really runs with (`--max-num-seqs`,
`--max-num-batched-tokens`), the longest request it accepts (`--max-model-len`, which
bounds the token histograms' top bucket) and the GPUs it holds; they live in the Deployment, so they
are read from there rather than repeated in the SLOTier. Pure: plain JSON in, `EngineArgs`
out.

Which container: the one named `vllm`, else the first that requests GPUs. Where the flags
are: `command` and `args` joined (both `vllm serve M --max-num-seqs 64` and an image whose
entrypoint takes only `args`), a shell string (`sh -c "vllm serve ..."`) split like a
shell would, `--flag N` and `--flag=N`, dashes or underscores (vLLM accepts both), the
last occurrence winning as in argparse, `--max-model-len` also in vLLM's human-readable
form (`16k` = 16,000, `16K` = 16,384). A flag that is absent or not a positive integer
(`--max-model-len auto`, `-1`) is None: the model profile's default applies.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from tierscale.adapters.kubernetes.names import GPU_PRODUCT_LABEL, GPU_RESOURCE
from tierscale.loop.ports import EngineArgs

VLLM_CONTAINER = "vllm"
_ALIASES = {
    "--max-num-seqs": "--max-num-seqs",
    "--max-num-batched-tokens": "--max-num-batched-tokens",
    "--max-model-len": "--max-model-len",
    "--tensor-parallel-size": "--tensor-parallel-size",
    "-tp": "--tensor-parallel-size",
    "--pipeline-parallel-size": "--pipeline-parallel-size",
    "-pp": "--pipeline-parallel-size",
}


def engine_args(deployment: Mapping[str, Any]) -> EngineArgs:
    """The engine arguments of a Deployment (JSON as the API server returns it)."""
    pod_spec = deployment.get("spec", {}).get("template", {}).get("spec", {}) or {}
    accelerator = accelerator_of(pod_spec)
    container = vllm_container(pod_spec.get("containers") or [])
    if container is None:
        return EngineArgs(accelerator=accelerator)
    flags = flag_values([*(container.get("command") or []), *(container.get("args") or [])])
    parallel = _positive(flags.get("--tensor-parallel-size"))
    pipeline = _positive(flags.get("--pipeline-parallel-size"))
    if parallel is not None and pipeline is not None:
        parallel *= pipeline
    gpus = gpu_count(container)
    return EngineArgs(
        max_num_seqs=_positive(flags.get("--max-num-seqs")),
        max_num_batched_tokens=_positive(flags.get("--max-num-batched-tokens")),
        max_model_len=human_readable_tokens(flags.get("--max-model-len")),
        gpus_per_replica=gpus if gpus is not None else parallel,
        accelerator=accelerator,
    )


def vllm_container(containers: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for container in containers:
        if container.get("name") == VLLM_CONTAINER:
            return container
    for container in containers:
        if gpu_count(container):
            return container
    return None


def gpu_count(container: Mapping[str, Any]) -> int | None:
    """The container's `nvidia.com/gpu` limit (or request: the two must be equal)."""
    resources = container.get("resources") or {}
    for kind in ("limits", "requests"):
        value = (resources.get(kind) or {}).get(GPU_RESOURCE)
        if value is not None:
            return _positive(value)
    return None


def flag_values(tokens: Sequence[object]) -> dict[str, str]:
    """flag (canonical spelling) -> its last value, for the flags tierscale reads."""
    words = _words(tokens)
    out: dict[str, str] = {}
    for at, word in enumerate(words):
        name, eq, value = word.partition("=")
        canonical = _ALIASES.get(_dashes(name) if name.startswith("--") else name)
        if canonical is None:
            continue
        if eq:
            out[canonical] = value
        elif at + 1 < len(words):
            out[canonical] = words[at + 1]
    return out


def accelerator_of(pod_spec: Mapping[str, Any]) -> str | None:
    """The accelerator the pods are pinned to: a node selector on `nvidia.com/gpu.product`,
    or a required node affinity naming exactly one product."""
    selected = (pod_spec.get("nodeSelector") or {}).get(GPU_PRODUCT_LABEL)
    if isinstance(selected, str) and selected:
        return selected
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    products: set[str] = set()
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == GPU_PRODUCT_LABEL and expr.get("operator") == "In":
                products.update(str(v) for v in expr.get("values") or [])
    return products.pop() if len(products) == 1 else None


def _words(tokens: Sequence[object]) -> list[str]:
    words: list[str] = []
    for token in tokens:
        text = str(token)
        if any(ch.isspace() for ch in text):
            try:
                words.extend(shlex.split(text))
            except ValueError:  # unbalanced quotes: still read what can be read
                words.extend(text.split())
        else:
            words.append(text)
    return words


def _dashes(flag: str) -> str:
    return "--" + flag[2:].replace("_", "-")


_HUMAN_READABLE = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human_readable_tokens(value: str | None) -> int | None:
    """vLLM's `human_readable_int` for `--max-model-len`: `16384`, `16k` (x1000), `16K`
    (x1024, whole numbers only), `25.6k`; None for anything else (`auto`, `-1`, absent)."""
    if value is None:
        return None
    match = _HUMAN_READABLE.fullmatch(value.strip())
    if match is None:
        return _positive(value)
    number, suffix = match.groups()
    if suffix in _DECIMAL:
        return _positive(int(float(number) * _DECIMAL[suffix]))
    if "." in number:
        return None
    return _positive(int(number) * _BINARY[suffix])


def _positive(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None
