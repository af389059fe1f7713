"""Engine arguments come from the Deployment as vLLM would parse them."""

from __future__ import annotations

from typing import Any

import pytest

from tierscale.adapters.kubernetes.engine_args import engine_args, flag_values
from tierscale.loop.ports import EngineArgs


def _deployment(*containers: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers), **pod_spec}}}}


def _vllm(
    args: list[str] | None = None, command: list[str] | None = None, gpus: Any = 1
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "vllm", "image": "vllm/vllm-openai"}
    if args is not None:
        container["args"] = args
    if command is not None:
        container["command"] = command
    if gpus is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return container


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "m", "--max-num-seqs", "64", "--max-num-batched-tokens", "2048"],
        ["--model", "m", "--max-num-seqs=64", "--max-num-batched-tokens=2048"],
        ["--model=m", "--max_num_seqs", "64", "--max_num_batched_tokens=2048"],
        ["--max-num-seqs", "8", "--max-num-seqs", "64", "--max-num-batched-tokens", "2048"],
    ],
    ids=["space", "equals", "underscores", "last-wins"],
)
def test_flags_in_args(args: list[str]) -> None:
    assert engine_args(_deployment(_vllm(args))) == EngineArgs(
        max_num_seqs=64, max_num_batched_tokens=2048, gpus_per_replica=1
    )


def test_flags_in_command_and_args_together() -> None:
    container = _vllm(
        args=["--max-num-batched-tokens", "4096"],
        command=["vllm", "serve", "m", "--max-num-seqs", "32"],
    )
    got = engine_args(_deployment(container))
    assert (got.max_num_seqs, got.max_num_batched_tokens) == (32, 4096)


def test_flags_in_a_shell_string() -> None:
    container = _vllm(
        command=[
            "/bin/sh",
            "-c",
            "exec vllm serve 'my model' --max-num-seqs=16 --max-num-batched-tokens 1024",
        ]
    )
    got = engine_args(_deployment(container))
    assert (got.max_num_seqs, got.max_num_batched_tokens) == (16, 1024)


def test_absent_or_invalid_values_are_none() -> None:
    got = engine_args(
        _deployment(_vllm(["--max-num-seqs", "lots", "--max-num-batched-tokens", "0"]))
    )
    assert (got.max_num_seqs, got.max_num_batched_tokens) == (None, None)
    assert flag_values(["--max-num-seqs"]) == {}  # a flag without a value


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("16384", 16384),
        ("16k", 16_000),
        ("16K", 16_384),
        ("25.6k", 25_600),
        ("1m", 1_000_000),
        ("1M", 1_048_576),
        ("2.5K", None),  # vLLM refuses decimals with binary suffixes
        ("auto", None),
        ("-1", None),
        ("0", None),
        ("lots", None),
    ],
)
def test_max_model_len_as_vllm_reads_it(value: str, tokens: int | None) -> None:
    for args in (["--max-model-len", value], [f"--max_model_len={value}"]):
        assert engine_args(_deployment(_vllm(["--model", "m", *args]))).max_model_len == tokens


def test_max_model_len_is_none_when_absent() -> None:
    assert engine_args(_deployment(_vllm(["--model", "m"]))).max_model_len is None


def test_gpus_from_limit_then_request_then_parallelism() -> None:
    assert engine_args(_deployment(_vllm([], gpus=4))).gpus_per_replica == 4
    requested = _vllm([], gpus=None) | {"resources": {"requests": {"nvidia.com/gpu": "2"}}}
    assert engine_args(_deployment(requested)).gpus_per_replica == 2
    parallel = _vllm(["--tensor-parallel-size", "2", "-pp", "2"], gpus=None)
    assert engine_args(_deployment(parallel)).gpus_per_replica == 4
    assert engine_args(_deployment(_vllm(["-tp", "8"], gpus=None))).gpus_per_replica == 8
    # The limit is what the scheduler allocates and the budget counts.
    assert engine_args(_deployment(_vllm(["-tp", "8"], gpus=2))).gpus_per_replica == 2


def test_the_vllm_container_is_named_vllm_else_the_first_with_gpus() -> None:
    sidecar = {"name": "proxy", "args": ["--max-num-seqs", "1"]}
    named = _vllm(["--max-num-seqs", "64"]) | {"name": "vllm"}
    assert engine_args(_deployment(sidecar, named)).max_num_seqs == 64
    gpu = _vllm(["--max-num-seqs", "48"]) | {"name": "server"}
    assert engine_args(_deployment(sidecar, gpu)).max_num_seqs == 48
    assert engine_args(_deployment(sidecar)) == EngineArgs()


def test_accelerator_from_node_selector_or_single_valued_affinity() -> None:
    selector = {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}
    assert engine_args(_deployment(_vllm([]), **selector)).accelerator == "NVIDIA-H100-80GB-HBM3"

    def affinity(*values: str) -> dict[str, Any]:
        term = {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": list(values)}
            ]
        }
        return {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
                }
            }
        }

    assert engine_args(_deployment(_vllm([]), **affinity("L4"))).accelerator == "L4"
    assert engine_args(_deployment(_vllm([]), **affinity("L4", "A100"))).accelerator is None
    assert engine_args(_deployment(_vllm([]))).accelerator is None


def test_an_empty_deployment_reads_as_defaults() -> None:
    assert engine_args({}) == EngineArgs()
