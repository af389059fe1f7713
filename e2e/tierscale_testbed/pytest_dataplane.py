"""pytest plugin: the testbed's data plane (Envoy and Prometheus) as session fixtures.

- ``envoy`` (session): Envoy fed from the ConfigMap ``tierscale-envoy`` in its own
  namespace of the ``cluster`` fixture (kubelet-style volume sync), with EDS files kept
  current from ``simvllm_discovery_dir``. Tests route with ``envoy.apply(table)`` (the
  production ConfigMap writer, validated, waits until live) or patch the ConfigMap
  themselves with ``envoy.patch_configmap(data)``.
- ``prometheus`` (session): scrapes Envoy, every simulated vLLM pod and the operator's
  file_sd targets every 1 s, with the project's recording rules, on a fresh TSDB.
- ``name_echo_upstreams`` (function): upstreams "a" and "b" that answer with their name,
  for routing tests that need no simulated vLLM.
All are stopped in finalizers, also when a test or the fixture setup fails; their logs
stay in pytest's temp dir (``envoy.log``, ``prometheus.log``; see docs/testbed.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tierscale_testbed.cluster import Cluster
from tierscale_testbed.envoy import NameEchoUpstream, TestbedEnvoy
from tierscale_testbed.prometheus import TestbedPrometheus

ENVOY_CONFIGMAP = "tierscale-envoy"


@pytest.fixture(scope="session")
def envoy(
    cluster: Cluster, simvllm_discovery_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestbedEnvoy]:
    namespace = cluster.create_namespace(f"tierscale-dataplane-{secrets.token_hex(3)}")
    api_client = cluster.api_client()
    try:
        testbed_envoy = TestbedEnvoy(
            tmp_path_factory.mktemp("envoy"),
            api_client,
            namespace,
            ENVOY_CONFIGMAP,
            simvllm_discovery_dir,
        )
        client.CoreV1Api(api_client).create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=ENVOY_CONFIGMAP),
                data=testbed_envoy.initial_configmap_data(),
            ),
        )
        testbed_envoy.start()
        try:
            yield testbed_envoy
        finally:
            testbed_envoy.stop()
    finally:
        api_client.close()  # type: ignore[no-untyped-call]
        cluster.delete_namespace(namespace)


@pytest.fixture(scope="session")
def prometheus(
    envoy: TestbedEnvoy, simvllm_discovery_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestbedPrometheus]:
    server = TestbedPrometheus(
        tmp_path_factory.mktemp("prometheus"),
        simvllm_discovery_dir,
        envoy_admin=envoy.process.admin_url.removeprefix("http://"),
    )
    with server:
        yield server


@pytest.fixture
def name_echo_upstreams() -> Iterator[dict[str, NameEchoUpstream]]:
    servers = {name: NameEchoUpstream(name).start() for name in ("a", "b")}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()
