"""Render a `RoutingTable` into Envoy v3 resources: one listener, its routes, the pools.

Choices that matter for LLM traffic (see docs/testbed.md, "Envoy and Prometheus"):
- route `timeout: 0s` + `idle_timeout`: the 15 s default would cut streamed generations;
- retries only where the request cannot have run yet (connect failure, refused stream,
  reset before the request was sent) or a 503 from a draining replica, on another host;
- one route per tier with `stat_prefix` = tier name, so `/stats/prometheus` carries
  `envoy_vhost_route_upstream_rq_total{envoy_route="<tier>"}`;
- `validate_clusters: true`, so a route to an unknown cluster is rejected, not a 503;
- admission caps as runtime overrides (`circuit_breakers.<cluster>.default.max_requests`)
  in an RTDS layer when the layout has an RTDS directory: a changed cap then changes no
  cluster. A cluster update re-creates the cluster, and its connection pools with it,
  which resets every stream in flight on the pool (Envoy counts them in
  `upstream_cx_destroy_local_with_active_rq`; envoyproxy/envoy#16165); without an RTDS
  directory the caps stay in the clusters.
Resources are plain dicts (Envoy's proto JSON/YAML form); nothing here does I/O.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from tierscale.adapters.envoy import routing

Resource = dict[str, Any]

LISTENER_NAME = "tierscale"
ROUTE_CONFIG_NAME = "tierscale"
VIRTUAL_HOST_NAME = "tierscale"

_TYPE_PREFIX = "type.googleapis.com/envoy."
LISTENER_TYPE = _TYPE_PREFIX + "config.listener.v3.Listener"
CLUSTER_TYPE = _TYPE_PREFIX + "config.cluster.v3.Cluster"
ROUTE_TYPE = _TYPE_PREFIX + "config.route.v3.RouteConfiguration"
ASSIGNMENT_TYPE = _TYPE_PREFIX + "config.endpoint.v3.ClusterLoadAssignment"
RUNTIME_TYPE = _TYPE_PREFIX + "service.runtime.v3.Runtime"
RUNTIME_LAYER = "tierscale-caps"
"""Name of the RTDS layer (and its Runtime resource) that carries the admission caps."""
_HCM_TYPE = (
    _TYPE_PREFIX + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ROUTER_TYPE = _TYPE_PREFIX + "extensions.filters.http.router.v3.Router"
_PREVIOUS_HOSTS_TYPE = (
    _TYPE_PREFIX + "extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)

LDS_FILE = "lds.yaml"
CDS_FILE = "cds.yaml"
RDS_FILE = "rds.yaml"
RTDS_FILE = "rtds.yaml"


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    """How the data plane listens and retries; fixed per installation, not per plan."""

    address: str = "0.0.0.0"
    port: int = 8080
    idle_timeout_s: float = 300.0
    """No byte in either direction for this long ends a request (includes queueing in vLLM)."""
    num_retries: int = 2
    retry_on: str = "connect-failure,refused-stream,reset-before-request,retriable-status-codes"
    retriable_status_codes: tuple[int, ...] = (503,)
    """A draining vLLM replica answers 503 before doing any work: safe to retry elsewhere."""


@dataclass(frozen=True, slots=True)
class XdsLayout:
    """Where Envoy finds each xDS file: one watched directory per type.

    Envoy reloads every subscription watching a directory on any move into it, so separate
    directories keep a route change from re-reading (and re-warming) clusters.
    """

    lds_dir: str
    cds_dir: str
    rds_dir: str
    rtds_dir: str | None = None
    """Where the admission caps live as runtime overrides (None: in the clusters)."""

    @property
    def lds_path(self) -> str:
        return str(PurePosixPath(self.lds_dir) / LDS_FILE)

    @property
    def cds_path(self) -> str:
        return str(PurePosixPath(self.cds_dir) / CDS_FILE)

    @property
    def rds_path(self) -> str:
        return str(PurePosixPath(self.rds_dir) / RDS_FILE)

    @property
    def rtds_path(self) -> str | None:
        return None if self.rtds_dir is None else str(PurePosixPath(self.rtds_dir) / RTDS_FILE)


@dataclass(frozen=True, slots=True)
class XdsResources:
    """Everything one routing table becomes."""

    listener: Resource
    """Refers to the route configuration by name through RDS."""
    clusters: tuple[Resource, ...]
    route_config: Resource
    runtime: Resource | None = None
    """The RTDS layer with the admission caps (None: caps are in the clusters)."""

    def files(self) -> dict[str, str]:
        """File name -> YAML DiscoveryResponse, as Envoy's file subscriptions read them."""
        files = {
            LDS_FILE: dump_discovery_response([self.listener], LISTENER_TYPE),
            CDS_FILE: dump_discovery_response(list(self.clusters), CLUSTER_TYPE),
            RDS_FILE: dump_discovery_response([self.route_config], ROUTE_TYPE),
        }
        if self.runtime is not None:
            files[RTDS_FILE] = dump_discovery_response([self.runtime], RUNTIME_TYPE)
        return files


def dump_discovery_response(resources: list[Resource], type_url: str) -> str:
    """YAML DiscoveryResponse whose `version_info` is a hash of its resources.

    Envoy reports that version per resource in `/config_dump`, so anyone can tell which
    config is live, and a writer can wait for exactly the version it published.
    """
    typed = [{"@type": type_url, **r} for r in resources]
    body = yaml.safe_dump(typed, sort_keys=False)
    version = hashlib.sha256(body.encode()).hexdigest()[:16]
    return yaml.safe_dump({"version_info": version, "resources": typed}, sort_keys=False)


def version_of(file_content: str) -> str:
    """The `version_info` of a rendered xDS file."""
    loaded = yaml.safe_load(file_content)
    return str(loaded["version_info"]) if isinstance(loaded, dict) else ""


def _path_source(path: str, watched_directory: str) -> Resource:
    return {
        "path_config_source": {"path": path, "watched_directory": {"path": watched_directory}},
        "resource_api_version": "V3",
    }


def render(
    table: routing.RoutingTable, layout: XdsLayout, settings: ListenerSettings
) -> XdsResources:
    route_config = render_route_config(table, settings)
    listener = render_listener(settings, {"rds": _rds(layout)})
    caps_in_runtime = layout.rtds_dir is not None
    clusters = tuple(render_cluster(p, caps=not caps_in_runtime) for p in table.pools)
    runtime = render_runtime(table) if caps_in_runtime else None
    return XdsResources(
        listener=listener, clusters=clusters, route_config=route_config, runtime=runtime
    )


def cap_keys(cluster: str) -> tuple[str, str]:
    """Runtime keys overriding a cluster's default-priority max_requests / max_pending."""
    prefix = f"circuit_breakers.{cluster}.default"
    return f"{prefix}.max_requests", f"{prefix}.max_pending_requests"


def render_runtime(table: routing.RoutingTable) -> Resource:
    """The RTDS Runtime resource: every capped pool's caps as runtime overrides."""
    layer: dict[str, int] = {}
    for pool in table.pools:
        if pool.caps is not None:
            requests_key, pending_key = cap_keys(pool.name)
            layer[requests_key] = pool.caps.max_requests
            layer[pending_key] = pool.caps.max_pending_requests
    return {"name": RUNTIME_LAYER, "layer": dict(sorted(layer.items()))}


def _rds(layout: XdsLayout) -> Resource:
    return {
        "route_config_name": ROUTE_CONFIG_NAME,
        "config_source": _path_source(layout.rds_path, layout.rds_dir),
    }


def render_listener(settings: ListenerSettings, routes: Mapping[str, Any]) -> Resource:
    """`routes` is `{"rds": ...}` live or `{"route_config": ...}` when inlined to validate."""
    hcm: Resource = {
        "@type": _HCM_TYPE,
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        **routes,
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER_TYPE}}
        ],
    }
    return {
        "name": LISTENER_NAME,
        "address": {"socket_address": {"address": settings.address, "port_value": settings.port}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def render_route_config(table: routing.RoutingTable, settings: ListenerSettings) -> Resource:
    routes = [_tier_route(t, settings) for t in table.tiers]
    default = next((t for t in table.tiers if t.name == table.default_tier), None)
    if default is not None:
        catch_all = _tier_route(default, settings)
        catch_all["name"] = f"{default.name}-default"
        catch_all["match"] = {"prefix": "/"}
        routes.append(catch_all)
    return {
        "name": ROUTE_CONFIG_NAME,
        "validate_clusters": True,
        "virtual_hosts": [{"name": VIRTUAL_HOST_NAME, "domains": ["*"], "routes": routes}],
    }


def _tier_route(tier: routing.TierRoute, settings: ListenerSettings) -> Resource:
    return {
        "name": tier.name,
        "stat_prefix": tier.name,
        "match": {
            "prefix": "/",
            "headers": [{"name": tier.header_name, "string_match": {"exact": tier.header_value}}],
        },
        "route": {
            "timeout": "0s",
            "idle_timeout": _duration(settings.idle_timeout_s),
            "retry_policy": _retry_policy(settings),
            "weighted_clusters": {
                "clusters": [
                    {"name": name, "weight": weight}
                    for name, weight in sorted(tier.weights_by_cluster.items())
                ]
            },
        },
    }


def _retry_policy(settings: ListenerSettings) -> Resource:
    return {
        "retry_on": settings.retry_on,
        "num_retries": settings.num_retries,
        "retriable_status_codes": list(settings.retriable_status_codes),
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": _PREVIOUS_HOSTS_TYPE},
            }
        ],
        "host_selection_retry_max_attempts": 3,
    }


def render_cluster(pool: routing.PoolCluster, caps: bool = True) -> Resource:
    """`caps`: write the pool's caps into the cluster (False: they are runtime overrides)."""
    # A retry budget instead of the fixed max_retries=3: when a replica drains, every
    # request in flight to it may need one retry at once.
    threshold: Resource = {
        "priority": "DEFAULT",
        "track_remaining": True,
        "retry_budget": {"budget_percent": {"value": 25.0}, "min_retry_concurrency": 10},
    }
    if caps and pool.caps is not None:
        threshold["max_requests"] = pool.caps.max_requests
        threshold["max_pending_requests"] = pool.caps.max_pending_requests
    cluster: Resource = {
        "name": pool.name,
        "connect_timeout": _duration(pool.connect_timeout_s),
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {"thresholds": [threshold]},
    }
    source = pool.endpoints
    if isinstance(source, routing.EdsFile):
        cluster["type"] = "EDS"
        cluster["eds_cluster_config"] = {
            "eds_config": _path_source(source.path, source.watched_directory)
        }
    elif isinstance(source, routing.DnsService):
        cluster["type"] = "STRICT_DNS"
        cluster["load_assignment"] = render_load_assignment(pool.name, (source.address,))
    else:
        cluster["type"] = "STATIC"
        cluster["load_assignment"] = render_load_assignment(pool.name, source.endpoints)
    return cluster


def render_load_assignment(
    cluster: str, endpoints: tuple[routing.Endpoint, ...] | list[routing.Endpoint]
) -> Resource:
    """A ClusterLoadAssignment; also the content of an EDS file."""
    lb_endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": e.host, "port_value": e.port}}}}
        for e in endpoints
    ]
    return {"cluster_name": cluster, "endpoints": [{"lb_endpoints": lb_endpoints}]}


def render_bootstrap(
    layout: XdsLayout, admin_address: str, admin_port: int, node_id: str = "tierscale"
) -> Resource:
    """The static part Envoy starts from: admin, and LDS/CDS read from watched files."""
    bootstrap: Resource = {
        "node": {"id": node_id, "cluster": "tierscale"},
        "admin": {
            "address": {"socket_address": {"address": admin_address, "port_value": admin_port}}
        },
        "dynamic_resources": {
            "lds_config": _path_source(layout.lds_path, layout.lds_dir),
            "cds_config": _path_source(layout.cds_path, layout.cds_dir),
        },
    }
    if layout.rtds_dir is not None and layout.rtds_path is not None:
        bootstrap["layered_runtime"] = {
            "layers": [
                {
                    "name": RUNTIME_LAYER,
                    "rtds_layer": {
                        "name": RUNTIME_LAYER,
                        "rtds_config": _path_source(layout.rtds_path, layout.rtds_dir),
                    },
                }
            ]
        }
    return bootstrap


def render_validation_bootstrap(resources: XdsResources) -> Resource:
    """Everything inlined as static resources, because `--mode validate` skips xDS files.

    The listener is the real one with its RDS reference swapped for the route config, so
    what is validated is what will be served. EDS clusters become STATIC with no hosts:
    validate mode insists their endpoint file exist, and it usually lives elsewhere (in the
    Envoy pod); their endpoints are rendered by `render_load_assignment`, not by hand.
    """
    listener = copy.deepcopy(resources.listener)
    for chain in listener.get("filter_chains", []):
        for network_filter in chain.get("filters", []):
            hcm = network_filter.get("typed_config", {})
            if "rds" in hcm:
                del hcm["rds"]
                hcm["route_config"] = resources.route_config
    bootstrap: Resource = {
        "node": {"id": "tierscale-validate", "cluster": "tierscale"},
        "static_resources": {
            "listeners": [listener],
            "clusters": [_without_eds(c) for c in resources.clusters],
        },
    }
    if resources.runtime is not None:
        layer = {"name": RUNTIME_LAYER, "static_layer": dict(resources.runtime["layer"])}
        bootstrap["layered_runtime"] = {"layers": [layer]}
    return bootstrap


def _without_eds(cluster: Resource) -> Resource:
    if cluster.get("type") != "EDS":
        return cluster
    static = {k: v for k, v in cluster.items() if k != "eds_cluster_config"}
    static["type"] = "STATIC"
    static["load_assignment"] = render_load_assignment(str(cluster.get("name", "")), ())
    return static


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"
