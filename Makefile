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
binaries: ## build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kwok, helm and kubeconform into $(BAMEL_CACHE)
	@hack/build-binaries.sh

.PHONY: peers
peers: ## build Cluster Autoscaler's and Karpenter's kwok providers (bench/peers.bench.ts) into $(BAMEL_CACHE)
	@hack/build-peers.sh

##@ Build
.PHONY: build generate verify-generated lint typecheck
build: node-deps bpf ## compile TypeScript into dist/ (and the eBPF programs and addon)
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

##@ eBPF (the node agent): programs and the libbpf addon, built into bpf/build/
BPF_BUILD := bpf/build/bpf
BPF_OBJ := $(BPF_BUILD)/traffic.bpf.o
BPF_ADDON := bpf/build/Release/bamel_bpf.node
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
# Node's own headers (offline: node-gyp must not download them) and npm's bundled node-gyp.
NODE_PREFIX := $(realpath $(dir $(realpath $(shell command -v node)))..)
NODE_GYP := $(realpath $(dir $(realpath $(shell command -v npm)))..)/node_modules/node-gyp/bin/node-gyp.js
.PHONY: bpf
bpf: $(BPF_OBJ) $(BPF_ADDON) ## build the eBPF object and the addon (needs clang, bpftool, libbpf-dev: make system-deps)

$(BPF_BUILD)/vmlinux.h:
	@command -v bpftool >/dev/null || { echo "bpftool is missing: run make system-deps" >&2; exit 1; }
	@test -r /sys/kernel/btf/vmlinux || { echo "/sys/kernel/btf/vmlinux is missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)" >&2; exit 1; }
	@mkdir -p $(BPF_BUILD)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BPF_OBJ): bpf/traffic.bpf.c bpf/traffic.h $(BPF_BUILD)/vmlinux.h
	@command -v clang >/dev/null || { echo "clang is missing: run make system-deps" >&2; exit 1; }
	clang -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -I$(BPF_BUILD) -Ibpf -c $< -o $@

$(BPF_ADDON): bpf/addon/bpf_addon.cc bpf/binding.gyp node_modules/.package-lock.json
	@test -f $(NODE_PREFIX)/include/node/node_api.h || { echo "Node's headers are not in $(NODE_PREFIX)/include/node" >&2; exit 1; }
	@test -f /usr/include/bpf/libbpf.h || { echo "libbpf-dev is missing: run make system-deps" >&2; exit 1; }
	cd bpf && node $(NODE_GYP) configure build --nodedir=$(NODE_PREFIX) --loglevel=warn

##@ Benchmarks
.PHONY: bench
bench: build binaries ## run every benchmark (figures printed; all of them in bench/results.json)
	@hack/bench.sh

##@ Local datacenter
.PHONY: cluster-up cluster-down cluster-status
cluster-up: system-deps binaries ## start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1
	@hack/cluster.sh up

cluster-down: ## stop the local cluster's processes (only those it started)
	@hack/cluster.sh down

cluster-status: ## show the local cluster's processes and health
	@hack/cluster.sh status

##@ Image
# The image's tag (and the registry reference for docker-push).
IMG ?= bamel-autoscaler:dev
.PHONY: image docker-build docker-push
image: build ## build the OCI archive dist/bamel-autoscaler.oci.tar tagged IMG (no Docker engine needed); prints digest and size
	@hack/image.sh build $(IMG)

docker-build: image ## alias of make image (the image is built without a Docker engine)

docker-push: ## push dist/bamel-autoscaler.oci.tar to the registry reference IMG (skopeo)
	@hack/image.sh push $(IMG)

##@ Deployment
.PHONY: install uninstall
install: ## install the CRDs into the cluster of the current kubeconfig
	@test -x $(KUBECTL) || $(MAKE) binaries
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) apply --server-side -f config/crd/bases
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) wait --for condition=Established --timeout=60s crd/baremetalautoscalers.autoscaling.bamel.io
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) wait --for condition=Established --timeout=60s crd/trafficreports.autoscaling.bamel.io

uninstall: ## remove the CRDs (and with them every BareMetalAutoscaler) from the current cluster
	@test -x $(KUBECTL) || $(MAKE) binaries
	KUBECONFIG=$(KUBECONFIG) $(KUBECTL) delete --ignore-not-found -f config/crd/bases

# DEPLOY_WITH=helm deploys the chart (helm upgrade --install) instead of config/default.
DEPLOY_WITH ?= kustomize
export DEPLOY_WITH
.PHONY: deploy undeploy build-installer helm-lint
deploy: ## install bamel (config/default, image IMG) into the cluster of the current kubeconfig; DEPLOY_WITH=helm for the chart
	@test -x $(KUBECTL) || $(MAKE) binaries
	@KUBECONFIG=$(KUBECONFIG) hack/deploy.sh deploy $(IMG)

undeploy: ## remove what deploy installed (the CRDs, your autoscalers, inventories and the namespace stay)
	@KUBECONFIG=$(KUBECONFIG) hack/deploy.sh undeploy

build-installer: ## write dist/install.yaml: the whole install (config/default) with the image IMG
	@test -x $(KUBECTL) || $(MAKE) binaries
	@hack/deploy.sh installer $(IMG)

helm-lint: ## helm lint the chart (strict)
	@test -x $(BIN)/helm || $(MAKE) binaries
	$(BIN)/helm lint --strict helm/bamel-autoscaler

##@ The real node (root only)
.PHONY: node-up node-down node-status
node-up: system-deps binaries cluster-up ## containerd and a kubelet registered to the local cluster, with the image IMG imported (make image first)
	@hack/node.sh up $(IMG)

node-down: ## stop the real node (kubelet, containerd, the bridge)
	@hack/node.sh down

node-status: ## show the real node
	@hack/node.sh status


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

##@ Benchmarks
.PHONY: bench-energy
bench-energy: node-deps ## bamel simulate on the shipped traces: machine-hours, kWh, pending and power cycles against always-on, the oracle and a CA + Metal3 model
	TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/energy.bench.ts

.PHONY: clean
clean: ## remove build output (not the binary cache)
	rm -rf dist .tap coverage bpf/build
