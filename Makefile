# bamel-autoscaler. `make demo` and `make test` do everything on a fresh machine; every
# target is safe to run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BAMEL_CACHE ?= $(HOME)/.cache/bamel
export BAMEL_CACHE
BIN := $(BAMEL_CACHE)/bin
KUBECTL := $(BIN)/kubectl
LOCAL := $(CURDIR)/.local
LOCAL_KUBECONFIG := $(LOCAL)/kubeconfig
# install/uninstall act on the current kubeconfig; the local cluster's when none is set.
KUBECONFIG ?= $(LOCAL_KUBECONFIG)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

##@ Setup
.PHONY: deps node-deps system-deps
deps: system-deps node-deps ## install what the build and tests need (apt packages, npm ci)

system-deps:
	@hack/install-system-deps.sh

node-deps: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: binaries
binaries: ## build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok into $(BAMEL_CACHE)
	@hack/build-binaries.sh

##@ Build
.PHONY: build generate verify-generated lint typecheck
build: node-deps ## compile TypeScript into dist/
	npx tsc -p tsconfig.build.json
	@chmod +x dist/cmd/bamel.js

generate: build ## regenerate the CRD (and everything else derived from api/)
	node dist/hack/generate.js

verify-generated: build ## fail when a generated file is stale
	node dist/hack/generate.js --check

lint: node-deps ## eslint with type-checked rules
	npx eslint .

typecheck: node-deps ## type-check sources, tests and benchmarks
	npx tsc -p tsconfig.json --noEmit

##@ Local datacenter
.PHONY: cluster-up cluster-down cluster-status
cluster-up: system-deps binaries ## start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1
	@hack/cluster.sh up

cluster-down: ## stop the local cluster's processes (only those it started)
	@hack/cluster.sh down

cluster-status: ## show the local cluster's processes and health
	@hack/cluster.sh status

##@ Deployment
.PHONY: install uninstall deploy undeploy build-installer docker-build
install: ## install the CRDs into the cluster of the current kubeconfig
	@test -x $(KUBECTL) || $(MAKE) binaries
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) apply --server-side -f config/crd/bases
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) wait --for condition=Established --timeout=60s crd/baremetalautoscalers.autoscaling.bamel.io

uninstall: ## remove the CRDs (and with them every BareMetalAutoscaler) from the current cluster
	@test -x $(KUBECTL) || $(MAKE) binaries
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) delete --ignore-not-found -f config/crd/bases

deploy undeploy build-installer docker-build:
	@echo "make $@: not available yet; it arrives with the packaging work (the manager, its image and the Helm chart)." >&2
	@exit 2

##@ Test and demo
.PHONY: test test-unit test-integration demo
test: ## everything CI runs: lint, type-check, generated files, unit and integration tests
	@hack/run-tests.sh all

test-unit: build ## unit tests only (no cluster)
	@hack/run-tests.sh unit

test-integration: build cluster-up ## integration tests against the local cluster
	@hack/run-tests.sh integration

demo: deps build cluster-up install ## the local datacenter and bamel on it
	@hack/demo.sh

.PHONY: clean
clean: ## remove build output (not the binary cache)
	rm -rf dist .tap coverage
