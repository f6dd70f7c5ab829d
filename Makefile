# llmfleet: `make help` lists the targets. CI runs `make test` (see .ci/run).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The local-fleet tooling lives in hack/; the package is installed editable from operator/.
export PYTHONPATH := $(CURDIR)/hack:$(CURDIR)/operator
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the Python virtualenv with the package and test tools

.PHONY: binaries
binaries: ## Build the local control plane from Go modules (cached in ~/.cache/llmfleet)
	hack/build-binaries.sh >/dev/null

.PHONY: cluster-up
cluster-up: venv ## Start the local hub (cloud) and member (onprem, onprem-2) clusters; idempotent
	$(BIN)/python -m localfleet up

.PHONY: cluster-down
cluster-down: venv ## Stop and delete the local clusters
	$(BIN)/python -m localfleet down

.PHONY: demo
demo: venv gateway-venv prometheus llama-server garak ## The main job: clusters, CRDs, the operator, models, a hybrid endpoint, validation, autoscaling
	$(BIN)/python -m localfleet.demo

.PHONY: install-crds
install-crds: cluster-up ## Server-side apply the CRDs to the local hub cluster
	$(BIN)/python -m localfleet crds

.PHONY: run
run: install-crds ## Run the operator against the local hub cluster (Ctrl-C to stop)
	$(BIN)/llmfleet run --kubeconfig .cluster/cloud.kubeconfig

.PHONY: show
show: venv ## Print the federation: clusters, locations, nodes and GPUs
	$(BIN)/python -m localfleet show

.PHONY: kind-up
kind-up: venv ## Same three-cluster topology on kind (needs Docker and kind)
	$(BIN)/python -m localfleet kind-up

.PHONY: kind-down
kind-down: venv ## Delete the kind clusters
	$(BIN)/python -m localfleet kind-down

IMAGE ?= ghcr.io/llmfleet/llmfleet:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: image
image: ## Build the operator image with Docker (IMAGE=... to name it)
	@command -v docker >/dev/null || { echo "make image needs Docker; the chart and tests do not" >&2; exit 1; }
	docker build -t $(IMAGE) .

GARAK_IMAGE ?= ghcr.io/llmfleet/garak:0.17.1

.PHONY: image-garak
image-garak: ## Build the validation scanner image (garak, without torch) with Docker (GARAK_IMAGE=...)
	@command -v docker >/dev/null || { echo "make image-garak needs Docker; the tests do not" >&2; exit 1; }
	docker build -f Dockerfile.garak -t $(GARAK_IMAGE) .

.PHONY: chart-lint
chart-lint: binaries ## helm lint the chart (default values)
	"$$(hack/build-binaries.sh --print-bin-dir)/helm" lint --strict charts/llmfleet

.PHONY: dashboard-check
dashboard-check: ## Check the Grafana dashboards against Grafana's schema (@grafana/schema, tsc --strict)
	hack/check-dashboard.sh

CRD_DIRS := crds charts/llmfleet/crds

.PHONY: crds
crds: venv ## Generate the CRDs from the models into crds/ and the chart
	$(BIN)/python -m llmfleet.api.crdgen $(CRD_DIRS)

.PHONY: crds-check
crds-check: venv ## Fail if the committed CRDs differ from what the models generate
	$(BIN)/python -m llmfleet.api.crdgen --check $(CRD_DIRS)

.PHONY: lint
lint: venv ## Lint and check formatting (ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: fmt
fmt: venv ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: typecheck
typecheck: venv ## Type-check the operator package (mypy --strict)
	$(BIN)/mypy

.PHONY: test-unit
test-unit: venv ## Run the tests that need no cluster
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# LiteLLM's proxy, the ChatEndpoint gateway, in its own virtualenv: the live-gateway test runs
# the config the operator renders. Its dependencies stay out of the operator's environment.
GATEWAY_VENV ?= .venv-gateway
LITELLM_VERSION ?= 1.106.2

# PYTHONPATH (exported above) would show pip the operator's own distribution metadata
# (operator/llmfleet.egg-info), whose requirements the gateway does not install.
$(GATEWAY_VENV)/.installed:
	$(PYTHON) -m venv $(GATEWAY_VENV)
	PYTHONPATH= $(GATEWAY_VENV)/bin/pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)' 'prometheus-client>=0.20'
	touch $@

.PHONY: gateway-venv
gateway-venv: $(GATEWAY_VENV)/.installed ## Install LiteLLM's proxy (the gateway) for the live-gateway test

# garak, the validation scanner, in its own virtualenv in the cache (linked as .venv-garak):
# the scan test runs the operator's pod script with it. Pinned, installed without torch.
.PHONY: garak
garak: ## Install garak (pinned, without torch) into its own virtualenv for the validation scan test
	hack/install-garak.sh >/dev/null

.PHONY: prometheus
prometheus: ## Install Prometheus, promtool and Alertmanager (Debian packages) for the live tests
	hack/install-prometheus.sh

.PHONY: llama-server
llama-server: ## Build llama.cpp's llama-server (CPU only) into the cache for the model-server test
	hack/build-llama-server.sh

.PHONY: runtime-sources
runtime-sources: venv ## Fetch vLLM's and ollama's argument parsers (sources) for the runtime-args test
	hack/fetch-runtime-sources.sh >/dev/null

.PHONY: argocd
argocd: ## Build Argo CD's controllers and repo-server from Go modules; install redis-server
	hack/build-argocd.sh >/dev/null

.PHONY: test-integration
test-integration: venv gateway-venv garak prometheus llama-server argocd dashboard-check runtime-sources ## Run the tests against the local clusters (brings them up if needed) and, alongside, those that need no cluster
	VENV=$(VENV) hack/test-integration.sh $(PYTEST_ARGS)

.PHONY: check
check: lint typecheck crds-check test-unit ## The fast checks, no cluster needed: lint, types, CRD drift, unit tests

.PHONY: test
test: check test-integration ## Everything CI checks: the fast checks, then the integration tests

.PHONY: bench
bench: venv gateway-venv ## The operator against a plain loop at 1k/3k/5k LLMDeployments and 300 GPU models, then the gateway's overhead
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/gateway.py

.PHONY: bench-writes
bench-writes: venv ## Count the API writes per LLMDeployment on create, resync and restart
	$(BIN)/python bench/writes.py

.PHONY: bench-gateway
bench-gateway: venv gateway-venv ## Benchmark the ChatEndpoint gateway, no cluster: added latency and rps, plugin on and off
	$(BIN)/python bench/gateway.py

.PHONY: clean
clean: ## Remove the virtualenv and caches in the repo (not the binary cache)
	rm -rf $(VENV) $(GATEWAY_VENV) .venv-garak .pytest_cache .mypy_cache .ruff_cache .hypothesis
