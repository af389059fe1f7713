"""`tierscale backtest`: what tierscale would have done on your own history.

Reads, from Prometheus range queries at the control interval, the inputs the planner
would have seen between --from and --to, runs the operator's own tick over them in
dry-run (planner state carried tick to tick, exactly as live) and reports it next to
what happened: replicas per tier over time, GPU-hours (tierscale vs actual), ticks where
the plan predicts an SLO miss, the spill it would have planned. Writes a table to stdout
and timeline.csv, summary.json and plots to --out (docs/backtest.md).

The tiers come from --tiers (SLOTier YAML) or, without it, from the cluster of the
current kubeconfig; the engine arguments of their Deployments from --deployments (YAML,
e.g. `kubectl get deploy -o yaml`) or that cluster. Settings not given as options come
from the operator's own (`TIERSCALE_*`).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from tierscale.adapters.kubernetes.engine_args import engine_args
from tierscale.adapters.prometheus import client as prom_client
from tierscale.adapters.prometheus import queries
from tierscale.api import codec
from tierscale.backtest import engine, history, report
from tierscale.domain.tiers import Tier
from tierscale.loop import naming
from tierscale.loop.ports import EngineArgs
from tierscale.settings import Settings, parse_gpu_budget
from tierscale_predictor import latency, modelfile, profiles

_RELATIVE = re.compile(r"^(?:now)?\s*-\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class UsageError(ValueError):
    """Bad input: the message says what and how to fix it (exit code 2)."""


def register(subparsers: Any) -> None:
    # The declared defaults, not the environment: building the parser must not fail on a
    # bad TIERSCALE_* variable that only `tierscale run` reads (and reports by name).
    defaults = Settings.model_construct()
    parser = subparsers.add_parser(
        "backtest",
        help="what tierscale would have done over a stretch of Prometheus history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        help="start: unix seconds, RFC 3339 (2026-11-30T10:00:00Z) or relative (now-6h, -30m)",
    )
    parser.add_argument("--to", dest="end", default="now", help="end (same forms; default now)")
    parser.add_argument("--tiers", type=Path, help="SLOTier YAML (default: the cluster's)")
    parser.add_argument(
        "--deployments",
        type=Path,
        help="Deployment YAML for engine arguments (default: the "
        "cluster's when --tiers is not given, else the latency profile's defaults)",
    )
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=defaults.control_interval_s,
        help=f"control interval, seconds (default {defaults.control_interval_s:g})",
    )
    parser.add_argument(
        "--window",
        type=_seconds,
        default=defaults.metrics_window_s,
        help=f"metrics window, seconds (default {defaults.metrics_window_s:g})",
    )
    parser.add_argument(
        "--stale-after",
        type=_seconds,
        default=defaults.stale_after_s,
        help=f"staleness limit, seconds (default {defaults.stale_after_s:g})",
    )
    parser.add_argument(
        "--rate-history",
        type=_seconds,
        default=defaults.rate_history_s,
        help=f"rate history the forecast sees, seconds (default {defaults.rate_history_s:g})",
    )
    parser.add_argument(
        "--replicas",
        choices=("auto", "kube-state-metrics", "vllm-pods"),
        default="auto",
        help="where the actual replicas come from (default auto: kube-state-metrics if "
        "Prometheus has it, else pods exporting vLLM metrics)",
    )
    parser.add_argument(
        "--gpu-budget",
        default=None,
        help="GPU budget: a number or label=N,...; default: none (unlimited)",
    )
    parser.add_argument(
        "--profile",
        default=defaults.latency_profile,
        help=f"bundled latency profile (default {defaults.latency_profile})",
    )
    parser.add_argument(
        "--model-file",
        action="append",
        default=[],
        metavar="SERVED=PATH",
        help="fitted latency model for a served model (repeatable)",
    )
    parser.add_argument(
        "--use-recording-rules",
        action="store_true",
        default=defaults.use_recording_rules,
        help="query the recording rules instead of the raw expressions",
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=30.0, help="per range query, seconds (default 30)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/backtest"), help="output dir")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.set_defaults(func=run)


def _seconds(text: str) -> float:
    try:
        value = queries.parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def parse_time(text: str, now_s: float) -> float:
    """Unix seconds, RFC 3339, `now`, or `now-6h` / `-6h` (s, m, h, d)."""
    text = text.strip()
    if text == "now":
        return now_s
    match = _RELATIVE.match(text)
    if match:
        return now_s - float(match[1]) * _UNIT_S[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"time {text!r}: expected unix seconds, RFC 3339 (2026-11-30T10:00:00Z) or now-6h"
        ) from None
    if parsed.tzinfo is None:
        raise UsageError(f"time {text!r}: give a time zone (e.g. a trailing Z for UTC)")
    return parsed.timestamp()


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    out = Console(soft_wrap=True, highlight=False)
    try:
        now_s = time.time()
        start_s = parse_time(args.start, now_s)
        end_s = parse_time(args.end, now_s)
        if end_s <= start_s:
            raise UsageError(f"--to ({end_s:.0f}) must be after --from ({start_s:.0f})")
        if end_s > now_s + 1.0:
            raise UsageError("--to is in the future: a backtest reads history")
        tiers, engines = _tiers_and_engines(args)
        default_model, models = _models(args.profile, args.model_file)
        budget = parse_gpu_budget(args.gpu_budget, allocatable={}) if args.gpu_budget else None
        transport = history.RangeTransport(
            prom_client.ApiClientTransport(args.prometheus),
            start_s - _history_span(args.rate_history, args.interval),
            end_s,
            args.interval,
        )
    except (UsageError, codec.SpecError, ValueError, OSError, modelfile.ModelFileError) as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    config = engine.Config(
        start_s=start_s,
        end_s=end_s,
        interval_s=args.interval,
        window_s=args.window,
        stale_after_s=args.stale_after,
        rate_history_s=args.rate_history,
        timeout_s=args.timeout,
        use_recording_rules=args.use_recording_rules,
        replica_source=args.replicas,
        prometheus_url=args.prometheus,
    )
    ticks = int((end_s - start_s) // args.interval) + 1
    err.print(
        f"backtest: {len(tiers)} tier(s), {ticks} ticks of {args.interval:g} s "
        f"from {_iso(start_s)} to {_iso(end_s)} against {args.prometheus}"
    )
    try:
        result = engine.run(
            tiers=tiers,
            engine_by_pool=engines,
            models_by_served=models,
            default_model=default_model,
            budget=budget,
            transport=transport,
            config=config,
            progress=_progress(err, ticks),
        )
    except (OSError, ValueError) as e:
        err.print(f"\n[red]error:[/red] Prometheus at {args.prometheus}: {e}")
        return 1
    summaries = report.summarize(result)
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_timeline(result, args.out / "timeline.csv")
    report.write_json(result, summaries, args.out / "summary.json")
    written = [args.out / "timeline.csv", args.out / "summary.json"]
    if not args.no_plots:
        try:
            written += report.plot(result, summaries, args.out)
        except ModuleNotFoundError:
            err.print("plots skipped: matplotlib is not installed (pip install matplotlib)")
    out.print(_table(result, summaries))
    if result.prometheus_errors:
        err.print(
            f"[yellow]{result.prometheus_errors} query failures[/yellow] (those fields were "
            f"missing: tiers held); last: {'; '.join(result.last_errors[-3:])}"
        )
    err.print(
        f"replicas from {result.replica_source}; {result.range_requests} range queries; "
        f"{result.wall_s:.1f} s; wrote {', '.join(str(p) for p in written)}"
    )
    return 0


def _history_span(rate_history_s: float, interval_s: float) -> float:
    """Fetch this much before --from so the first tick's forecast sees its history."""
    steps = -(-rate_history_s // interval_s)
    return steps * interval_s


def _progress(console: Console, total: int) -> Any:
    every = max(1, total // 20)

    def show(done: int, of: int) -> None:
        if done == of or done % every == 0:
            console.print(f"  tick {done}/{of}", end="\r")
            if done == of:
                console.print()

    return show


def _iso(at_s: float) -> str:
    return datetime.fromtimestamp(at_s).astimezone().isoformat(timespec="seconds")


def _tiers_and_engines(args: argparse.Namespace) -> tuple[list[Tier], dict[str, EngineArgs]]:
    if args.tiers is not None:
        tiers = codec.load_tiers_yaml(args.tiers)
        engines = _engines_from_file(args.deployments) if args.deployments else {}
        return tiers, engines
    return _from_cluster(args.deployments)


def _engines_from_file(path: Path) -> dict[str, EngineArgs]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: not valid YAML: {err}") from None
    return {key: engine_args(d) for key, d in _deployments(docs)}


def _deployments(docs: Iterable[Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for doc in docs:
        if not isinstance(doc, Mapping):
            continue
        if doc.get("kind") in ("List", "DeploymentList"):
            yield from _deployments(doc.get("items") or [])
        elif doc.get("kind") == "Deployment":
            meta = doc.get("metadata") or {}
            yield f"{meta.get('namespace', 'default')}/{meta.get('name')}", doc


def _from_cluster(deployments: Path | None) -> tuple[list[Tier], dict[str, EngineArgs]]:
    from kubernetes import client, config

    from tierscale.api import models as api

    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception as err:  # no kubeconfig: say what to give instead
        raise UsageError(f"no --tiers and no usable kubeconfig ({err}): pass --tiers") from None
    api_client = client.ApiClient()
    custom: Any = client.CustomObjectsApi(api_client)
    listed: Mapping[str, Any] = custom.list_cluster_custom_object(
        api.GROUP, api.VERSION, api.PLURAL
    )
    tiers = [codec.to_tier(item) for item in listed.get("items", [])]
    if not tiers:
        raise UsageError("the cluster has no SLOTiers: pass --tiers")
    if deployments is not None:
        return tiers, _engines_from_file(deployments)
    apps = client.AppsV1Api(api_client)
    engines: dict[str, EngineArgs] = {}
    for t in tiers:
        body: Mapping[str, Any] = api_client.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            apps.read_namespaced_deployment(t.pool.deployment, t.namespace)
        )
        engines[naming.pool_key(t)] = engine_args(body)
    return tiers, engines


def _models(
    profile: str, files: Sequence[str]
) -> tuple[latency.LatencyModel, dict[str, latency.LatencyModel]]:
    try:
        default = latency.LatencyModel.from_profile(profiles.load_profile(profile))
    except profiles.ProfileError as err:
        raise UsageError(f"--profile {profile!r}: {err}") from None
    models: dict[str, latency.LatencyModel] = {}
    for pair in files:
        served, sep, path = pair.partition("=")
        if not sep:
            raise UsageError(f"--model-file {pair!r}: expected SERVED=PATH")
        models[served] = modelfile.load_model(Path(path))
    return default, models


def _table(result: engine.BacktestResult, summaries: Sequence[report.TierSummary]) -> Table:
    table = Table(title=f"backtest: tierscale (dry-run) vs actual, {len(summaries)} tier(s)")
    for column in (
        "tier",
        "ticks",
        "replicas it (mean/max)",
        "actual (mean/max)",
        "GPU-h it",
        "GPU-h actual",
        "predicted miss",
        "observed miss",
        "spill (ticks, mean rps)",
        "held",
        "top reasons",
    ):
        table.add_column(column, overflow="fold")
    for s in summaries:
        table.add_row(
            s.tier_key,
            str(s.ticks),
            f"{_f(s.desired_mean)} / {s.desired_max if s.desired_max is not None else '-'}",
            f"{_f(s.actual_mean)} / {_f(s.actual_max, 0)}",
            f"{s.gpu_hours_tierscale:.2f}",
            f"{s.gpu_hours_actual:.2f}",
            str(s.ticks_predicting_miss),
            str(s.ticks_observed_miss),
            f"{s.ticks_spilling}, {_f(s.spill_out_rps_mean, 2)}",
            str(s.ticks_held),
            ", ".join(f"{k} {v}" for k, v in list(s.reasons.items())[:3]),
        )
    return table


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
