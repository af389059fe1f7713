# Testbed targets, included by the top-level Makefile. `make test` builds/reuses the binaries
# (TESTBED_DEPS) before pytest starts, so the e2e fixtures never build anything themselves.
TESTBED_DEPS := testbed-binaries

.PHONY: testbed-binaries cluster-up cluster-down cluster-list

testbed-binaries:  ## build (or reuse) pinned kube/etcd/kwok/helm binaries in ~/.cache/tierscale, plus system packages
	@if [[ -f scripts/testbed/install-system-deps.sh ]]; then bash scripts/testbed/install-system-deps.sh; fi
	@bash scripts/testbed/build-binaries.sh

cluster-up: venv testbed-binaries  ## start a kwok GPU cluster that lives until `make cluster-down`
	@bash scripts/testbed/cluster-up.sh

cluster-down:  ## stop hand-started and orphaned testbed clusters (never live test sessions)
	@bash scripts/testbed/cluster-down.sh

cluster-list:  ## list testbed clusters and whether their owner is alive
	@$(PY) -m tierscale_testbed.cluster list
