"""pytest plugin: the testbed cluster as fixtures.

- ``cluster`` (session): one control plane with kwok GPU nodes for the whole session,
  stopped in a finalizer even when tests fail. Set ``TIERSCALE_CLUSTER=<name>`` to reuse a
  cluster from ``make cluster-up`` instead (it is then left running).
- ``namespace`` (function): a fresh namespace per test, deleted afterwards, so tests never
  see each other's objects and can run in any order.

Missing binaries FAIL the session with the command that builds them: a skipped e2e suite
would look green.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest

from tierscale_testbed.binaries import BinariesMissingError, require_binaries
from tierscale_testbed.cluster import Cluster, attach, running_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    try:
        require_binaries()
    except BinariesMissingError as error:
        pytest.fail(str(error), pytrace=False)
    reuse = os.environ.get("TIERSCALE_CLUSTER")
    if reuse:
        yield attach(reuse)
        return
    with running_cluster() as started:
        yield started


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"{slug or 't'}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = cluster.create_namespace(_namespace_name(request.node.name))
    try:
        yield name
    finally:
        cluster.delete_namespace(name)
