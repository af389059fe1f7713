"""e2e fixtures come from the testbed's pytest plugins; add yours to this list."""

pytest_plugins = [
    "tierscale_testbed.pytest_cluster",
    "tierscale_testbed.pytest_workload",
    "tierscale_testbed.pytest_dataplane",
    "tierscale_testbed.pytest_operator",
]
