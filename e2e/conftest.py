"""e2e fixtures come from the testbed's pytest plugins; add yours to this list."""

import pytest

pytest_plugins = [
    "tierscale_testbed.pytest_cluster",
    "tierscale_testbed.pytest_workload",
    "tierscale_testbed.pytest_dataplane",
    "tierscale_testbed.pytest_chart",
    "tierscale_testbed.pytest_operator",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The RBAC audit reads what every operator test did: it runs last."""
    items.sort(key=lambda item: item.path.name == "test_rbac_audit.py")
