# tierscale: two entry points for people (`make demo`, `make test`), the rest for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PKGS := operator/tierscale predictor/tierscale_predictor sim/tierscale_sim e2e/tierscale_testbed
# Extra prerequisites of `make test` contributed by included makefiles (e.g. testbed binaries).
TESTBED_DEPS ?=

-include e2e/testbed.mk

.PHONY: help venv test check lint typecheck imports unit pytest demo crds bench bench-report clean image image-smoke demo-sim

help:  ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

venv:  ## create .venv and install tierscale with dev tools (idempotent, cached by pyproject hash)
	@bash scripts/bootstrap.sh

test: venv check $(TESTBED_DEPS) pytest  ## the whole suite from scratch: lint, types, import contracts, unit, property and e2e tests

check: lint typecheck imports  ## static checks only

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy $(PKGS)

imports: venv
	$(BIN)/lint-imports

pytest: venv
	$(BIN)/pytest

unit: venv  ## fast tests only (no testbed)
	$(BIN)/pytest tests

demo: venv  ## the main job: the operator scaling a live testbed cluster through a compressed day (Helm chart, Envoy, Prometheus, live view; plots in out/demo/)
	bash scripts/demo.sh --out out/demo

demo-sim: venv  ## one planner decision explained, then tierscale against HPA, KEDA, static and the oracle in the fleet simulator (plots in out/demo-sim/)
	$(BIN)/tierscale plan --tiers examples/plan/tiers.yaml --observations examples/plan/observations.json
	$(BIN)/tierscale bench --scenario scenarios/demo-diurnal-1h.yaml --out out/demo-sim
	@echo "plots: out/demo-sim/replicas_over_time.png out/demo-sim/gpu_hours.png"

image: venv  ## build the operator's OCI image from Debian packages and PyPI wheels, no registry (root; minutes)
	bash image/build.sh
	bash image/smoke.sh

image-smoke: venv  ## run the built image's tierscale --version / run --help as its non-root user
	bash image/smoke.sh

crds: venv  ## regenerate crds/ from the pydantic models
	$(BIN)/tierscale crds --out crds/

bench: venv  ## speed benchmarks of the decision core and the simulator (results into docs/)
	$(PY) bench/plan_latency.py --out docs/plan-latency.md
	$(PY) bench/predictor.py --fleet-seconds 3600
	$(PY) bench/sim_speed.py

bench-report: venv  ## re-run every scenario and regenerate docs/benchmarks.md (long)
	bash scripts/bench-report.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
