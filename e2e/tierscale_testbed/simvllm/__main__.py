"""``python -m tierscale_testbed.simvllm``: serve every Ready vLLM pod of a cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from tierscale_predictor import profiles
from tierscale_testbed.simvllm import pod_server, pod_watch, supervisor


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tierscale_testbed.simvllm",
        description="Simulated vLLM: one loopback port per Ready pod, latencies from the "
        "engine model, vLLM's metric names on /metrics.",
    )
    p.add_argument("--kubeconfig", type=Path, help="cluster whose vLLM pods to serve")
    p.add_argument(
        "--standalone-pods",
        type=int,
        default=0,
        help="serve N pods without Kubernetes (pool standalone/sim), for benchmarks",
    )
    p.add_argument("--namespace", default=None, help="watch one namespace (default: all)")
    p.add_argument("--selector", default=pod_watch.DEFAULT_SELECTOR, help="pod label selector")
    p.add_argument("--profile", default="llama-3.1-8b-h100", help="default step-time profile")
    p.add_argument("--model-name", default="meta-llama/Llama-3.1-8B-Instruct")
    p.add_argument("--max-model-len", type=int, default=131072)
    p.add_argument("--default-max-tokens", type=int, default=256)
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--max-num-batched-tokens", type=int, default=None)
    p.add_argument(
        "--show-deprecated-metrics",
        action="store_true",
        help="also serve vllm:gpu_cache_usage_perc and vllm:time_per_output_token_seconds",
    )
    p.add_argument("--drain-timeout-s", type=float, default=120.0)
    p.add_argument("--discovery-dir", type=Path, required=True, help="where to write "
                   "file_sd.json (Prometheus) and endpoints.json (Envoy pools)")  # fmt: skip
    p.add_argument("--log-level", default="INFO")
    return p


async def _main(args: argparse.Namespace) -> None:
    config = pod_server.PodConfig(
        model_name=args.model_name,
        profile=profiles.load_profile(args.profile),
        max_model_len=args.max_model_len,
        default_max_tokens=args.default_max_tokens,
        show_deprecated_metrics=args.show_deprecated_metrics,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        drain_timeout_s=args.drain_timeout_s,
    )
    sup = supervisor.Supervisor(discovery_dir=args.discovery_dir, default_config=config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.standalone_pods:
        await sup.reconcile(_standalone_views(args.standalone_pods))
        await stop.wait()
        await sup.shutdown()
        return
    lister = pod_watch.PodLister(args.kubeconfig, namespace=args.namespace, selector=args.selector)
    await supervisor.run(lister, sup, stop=stop)


def _standalone_views(count: int) -> list[pod_watch.PodView]:
    return [
        pod_watch.PodView(
            uid=f"standalone-{i}",
            namespace="standalone",
            name=f"sim-{i}",
            deployment="sim",
            tier="default",
            model_name=None,
            profile=None,
            ready=True,
            terminating=False,
        )
        for i in range(count)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.standalone_pods and args.kubeconfig is None:
        parser.error("--kubeconfig is required unless --standalone-pods is given")
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
