"""`tierscale run`: the operator. A kopf operator that decides every model's tiers jointly
each control interval and carries the decision out: Deployment replicas through `/scale`,
Envoy routes and admission caps through the routing ConfigMap, SLOTier status, Events,
and its own metrics on `/metrics` (docs/operator.md).

Every setting is an environment variable `TIERSCALE_<NAME>` (how the Helm chart sets
them) or the option below, which wins over the environment. Durations are seconds,
rates requests per second.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from tierscale.adapters.envoy import configmap_writer, intent_routing, router, xds
from tierscale.adapters.kubernetes import ConfigMapState, KubeCluster
from tierscale.adapters.prometheus.client import PrometheusMetrics
from tierscale.api.crd import PEERING_GROUP
from tierscale.handlers import logs, operator, probes
from tierscale.handlers.exporter import Exporter
from tierscale.handlers.logs import FIELDS_ATTR
from tierscale.handlers.runtime import ReadyTimes, ReadyTimesCluster, Runtime
from tierscale.loop.ports import PortError
from tierscale.loop.tick import Ports
from tierscale.settings import Settings
from tierscale_predictor import latency, modelfile, profiles

log = logging.getLogger("tierscale.run")

LOOP_TIMEOUT_S = 10.0
"""`/healthz` fails when kopf's event loop does not answer within this long."""


class StartupError(RuntimeError):
    """The operator cannot start; the message says what to fix."""


# ----------------------------------------------------------------------------- CLI


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="run the operator (kopf) against the current cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, info in Settings.model_fields.items():
        _add_setting(parser, name, info)
    parser.set_defaults(func=run)


def _add_setting(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    option = "--" + name.replace("_", "-")
    env = f"TIERSCALE_{name.upper()}"
    default = info.default
    shown = (
        ",".join(default)
        if isinstance(default, tuple)
        else "none"
        if default is None
        else str(default).lower()
        if isinstance(default, bool)
        else str(default)
    )
    text = " ".join((info.description or "").split())
    help_text = f"{text} [env {env}; default: {shown or 'empty'}]".replace("%", "%%")
    kind, choices = _option_type(info.annotation)
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if kind is bool:
        parser.add_argument(option, action=argparse.BooleanOptionalAction, **kwargs)
    elif choices:
        parser.add_argument(option, choices=choices, **kwargs)
    else:
        parser.add_argument(option, type=kind, metavar=name.upper(), **kwargs)


def _option_type(annotation: Any) -> tuple[Callable[[str], Any], tuple[str, ...]]:
    """(argparse type, choices) for a settings annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _option_type(args[0])
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _option_type(args[0])
    if origin is typing.Literal:
        return str, tuple(str(a) for a in args)
    if annotation in (bool, int, float):
        return annotation, ()
    return str, ()  # strings, and comma-separated tuples (parsed by Settings)


def run(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        for error in err.errors():
            where = ".".join(str(p) for p in error["loc"])
            print(
                f"tierscale run: {where} (env TIERSCALE_{where.upper()}): {error['msg']}",
                file=sys.stderr,
            )
        return 2
    logs.configure(settings.log_format)
    quiet_stdout()
    try:
        serve(settings)
    except StartupError as err:
        log.error(f"cannot start: {err}")
        return 1
    return 0


# ----------------------------------------------------------------------------- wiring


def quiet_stdout() -> None:
    """Discard file descriptor 1: the MILP solver (HiGHS) prints debug lines straight to it
    (HiGHS#2783), which would break the one-JSON-object-per-line log. Logs go to stderr."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stdout.flush()
    os.dup2(devnull, 1)
    os.close(devnull)


def serve(settings: Settings) -> None:
    """Build the adapters, the runtime and the kopf registry; run until SIGTERM."""
    api_client = kube_api_client()
    exporter = Exporter()
    count_requests(api_client, exporter)
    if not settings.standalone:
        ensure_peering(api_client, settings)
    ready_times = ReadyTimes()
    live: list[Runtime] = []
    try:
        metrics = PrometheusMetrics.from_settings(settings)
    except PortError as err:
        raise StartupError(str(err)) from err
    ports = Ports(
        metrics=metrics,
        cluster=ReadyTimesCluster(
            KubeCluster(
                api_client,
                reporting_instance=instance_name(),
                timeout_s=settings.kubernetes_timeout_s,
            ),
            ready_times,
        ),
        router=envoy_router(api_client, settings, lambda: live[0].live_groups()),
        state=ConfigMapState(
            api_client, settings.operator_namespace, timeout_s=settings.kubernetes_timeout_s
        ),
    )
    default_model, models = latency_models(settings)
    runtime = Runtime(
        config=settings,
        ports=ports,
        models=models,
        default_model=default_model,
        exporter=exporter,
        workers=settings.tick_workers,
        error_counts={"prometheus": lambda: metrics.errors_total},
    )
    live.append(runtime)
    server = probes.ProbeServer(
        "0.0.0.0",
        settings.metrics_port,
        exporter,
        healthy=lambda: _healthy(runtime),
        ready=lambda: _ready(runtime),
    ).start()
    priority = (
        settings.peering_priority
        if settings.peering_priority is not None
        else random.SystemRandom().randint(1, 2**31 - 2)
    )
    log.info(
        "starting",
        extra={
            FIELDS_ATTR: {
                "port": server.port,
                "dry_run": settings.dry_run,
                "namespaces": list(settings.namespaces) or "all",
                "peering": "standalone" if settings.standalone else settings.peering_name,
                "priority": priority,
                "interval_s": settings.control_interval_s,
            }
        },
    )
    registry = operator.build_registry(runtime, ready_times, settings.control_interval_s)
    kopf_settings = operator.settings_for(
        peering_name=settings.peering_name,
        priority=priority,
        lifetime_s=settings.peering_lifetime_s,
        standalone=settings.standalone,
        clusterwide=not settings.namespaces,
        grace_s=settings.shutdown_grace_s,
    )
    try:
        kopf.run(
            registry=registry,
            settings=kopf_settings,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=settings.standalone,
            priority=priority,
            peering_name=None if settings.standalone else settings.peering_name,
        )
    finally:
        runtime.shutdown(settings.shutdown_grace_s)
        server.stop()
        log.info("stopped")


def _healthy(runtime: Runtime) -> tuple[bool, str]:
    loop = runtime.loop
    if loop is None:
        return True, "starting"
    return probes.loop_alive(loop, LOOP_TIMEOUT_S)


def _ready(runtime: Runtime) -> tuple[bool, str]:
    if runtime.loop is None:
        return False, "starting: kopf has not started yet"
    if runtime.stopping:
        return False, "shutting down"
    if runtime.cluster_readable is False:
        return False, "the last tick could not read the cluster"
    return True, "ok"


def kube_api_client() -> client.ApiClient:
    """In a pod: its service account; elsewhere: the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except config.ConfigException as err:
            raise StartupError(f"no in-cluster service account and no kubeconfig: {err}") from err
    return client.ApiClient()


def instance_name() -> str:
    """This replica in Events (`reportingInstance`): the pod's name, else host and pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def count_requests(api_client: client.ApiClient, exporter: Exporter) -> None:
    """Count every request the ticks send (the API-requests-per-tick benchmark reads it)."""
    rest: Any = api_client.rest_client
    send = rest.request

    def counted(method: str, *args: Any, **kwargs: Any) -> Any:
        exporter.kubernetes_requests.labels(method=method.upper()).inc()
        return send(method, *args, **kwargs)

    rest.request = counted


def ensure_peering(api_client: client.ApiClient, settings: Settings) -> None:
    """Create the peering object(s) kopf keeps the replicas' keep-alives in."""
    custom = client.CustomObjectsApi(api_client)
    body: dict[str, Any] = {"apiVersion": f"{PEERING_GROUP}/v1", "metadata": {}}
    targets: list[str | None] = list(settings.namespaces) or [None]
    for namespace in targets:
        try:
            if namespace is None:
                body |= {"kind": "ClusterKopfPeering", "metadata": {"name": settings.peering_name}}
                custom.create_cluster_custom_object(
                    PEERING_GROUP, "v1", "clusterkopfpeerings", body
                )
            else:
                body |= {
                    "kind": "KopfPeering",
                    "metadata": {"name": settings.peering_name, "namespace": namespace},
                }
                custom.create_namespaced_custom_object(
                    PEERING_GROUP, "v1", namespace, "kopfpeerings", body
                )
        except ApiException as err:
            if err.status == 409:
                continue
            if err.status == 404:
                raise StartupError(
                    "kopf's peering CRDs are not installed: `kubectl apply -f crds/` "
                    "(kopfpeerings.kopf.dev.yaml), or run one replica with "
                    "TIERSCALE_STANDALONE=true"
                ) from err
            raise StartupError(f"cannot create the peering object: HTTP {err.status}") from err


def envoy_router(
    api_client: client.ApiClient, settings: Settings, live_groups: Callable[[], frozenset[str]]
) -> router.EnvoyRouter:
    namespace, _, name = settings.envoy_configmap.rpartition("/")
    root = settings.envoy_xds_dir.rstrip("/")
    writer = configmap_writer.ConfigMapRoutingWriter(
        client.CoreV1Api(api_client),
        namespace or settings.operator_namespace,
        name,
        xds.XdsLayout(
            lds_dir=f"{root}/lds",
            cds_dir=f"{root}/cds",
            rds_dir=f"{root}/rds",
            rtds_dir=f"{root}/rtds" if settings.envoy_caps_in_runtime else None,
        ),
        xds.ListenerSettings(
            address=settings.envoy_listener_address,
            port=settings.envoy_listener_port,
            idle_timeout_s=settings.envoy_idle_timeout_s,
        ),
        settings.envoy_binary,
        settings.envoy_settle_s,
    )
    try:
        endpoints = intent_routing.endpoint_policy(settings.envoy_pool_endpoints)
    except ValueError as err:
        raise StartupError(str(err)) from err
    return router.EnvoyRouter(writer, endpoints, live_groups)


def latency_models(
    settings: Settings,
) -> tuple[latency.LatencyModel, Mapping[str, latency.LatencyModel]]:
    """(the bundled profile's model for every served model, the fitted ones by name)."""
    try:
        default = latency.LatencyModel.from_profile(profiles.load_profile(settings.latency_profile))
    except profiles.ProfileError as err:
        raise StartupError(f"latency_profile {settings.latency_profile!r}: {err}") from err
    models: dict[str, latency.LatencyModel] = {}
    for pair in settings.latency_model_files:
        served, sep, path = pair.partition("=")
        if not sep:
            raise StartupError(f"latency_model_files {pair!r}: expected `served-model=path`")
        try:
            models[served] = modelfile.load_model(Path(path))
        except (OSError, modelfile.ModelFileError) as err:
            raise StartupError(f"latency model {path}: {err}") from err
    return default, models
