#!/usr/bin/env bash
# Builds the local datacenter's binaries from their Go modules into the cache
# (default ~/.cache/bamel, override with BAMEL_CACHE): the control plane (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), kwok, the kubelet of the
# real node (make node-up), helm and kubeconform (the chart's checks). A second run reuses
# the cache: each binary is rebuilt only when its pinned version changes.
set -euo pipefail
# shellcheck source=binary-cache.sh
source "$(cd "$(dirname "$0")" && pwd)/binary-cache.sh"

build_kube() {
  local need=()
  for c in "${kube_components[@]}"; do
    stamp_ok "$c" "$KUBE_VERSION" || need+=("$c")
  done
  [[ ${#need[@]} -eq 0 ]] && { echo "kubernetes $KUBE_VERSION: cached"; return; }
  local staging="${KUBE_VERSION/v1./v0.}"
  local dir="$work/kubernetes-$KUBE_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    # A wrapper module: k8s.io/kubernetes replaces its staging modules with local paths,
    # which only resolve inside its own repository, so point each at its published version.
    if [[ ! -f go.sum ]]; then
      rm -f go.mod
      go mod init bamel.local/kube-build >/dev/null 2>&1
      go mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
      local modfile
      modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod"
      [[ -f "$modfile" ]] || go mod download "k8s.io/kubernetes@$KUBE_VERSION"
      grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" | awk '{print $1}' | while read -r m; do
        go mod edit -replace="$m=$m@$staging"
      done
      rm -f tools.go
    fi
    # One tools.go imports every component, so that go.sum covers them all; a component
    # added later (the kubelet) tidies the module again.
    local tools
    tools="$(printf '//go:build tools\n\npackage tools\n\nimport (\n'; for c in "${kube_components[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done; printf ')\n')"
    if [[ ! -f tools.go || "$(cat tools.go)" != "$tools" ]]; then
      printf '%s\n' "$tools" > tools.go
      go mod tidy -e >/dev/null
    fi
    local major minor
    major="$(echo "$KUBE_VERSION" | sed -E 's/^v([0-9]+)\..*/\1/')"
    minor="$(echo "$KUBE_VERSION" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')"
    local ld="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    for c in "${need[@]}"; do
      echo "building $c $KUBE_VERSION"
      go build -trimpath -ldflags "$ld" -o "$bin/$c" "k8s.io/kubernetes/cmd/$c"
      stamp "$c" "$KUBE_VERSION"
    done
  )
}

build_etcd() {
  stamp_ok etcd "$ETCD_VERSION" && { echo "etcd $ETCD_VERSION: cached"; return; }
  local dir="$work/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    if [[ ! -f go.sum ]]; then
      rm -f go.mod
      go mod init bamel.local/etcd-build >/dev/null 2>&1
      go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      # etcd's server module replaces its sibling modules with local paths too.
      for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
        go mod edit -replace="go.etcd.io/etcd/$m=go.etcd.io/etcd/$m@$ETCD_VERSION"
      done
      cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
      go mod tidy -e >/dev/null
    fi
    echo "building etcd $ETCD_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
    stamp etcd "$ETCD_VERSION"
  )
}

build_kwok() {
  stamp_ok kwok "$KWOK_VERSION" && { echo "kwok $KWOK_VERSION: cached"; return; }
  echo "building kwok $KWOK_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  stamp kwok "$KWOK_VERSION"
}

build_helm() {
  stamp_ok helm "$HELM_VERSION" && { echo "helm $HELM_VERSION: cached"; return; }
  echo "building helm $HELM_VERSION"
  local major="${HELM_VERSION%%.*}"
  # Without the version in the binary, `helm version` names only the minor.
  GOBIN="$bin" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  stamp helm "$HELM_VERSION"
}

build_kubeconform() {
  stamp_ok kubeconform "$KUBECONFORM_VERSION" && { echo "kubeconform $KUBECONFORM_VERSION: cached"; return; }
  echo "building kubeconform $KUBECONFORM_VERSION"
  GOBIN="$bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  stamp kubeconform "$KUBECONFORM_VERSION"
}

kube_components=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
build_etcd
build_kwok
build_kube
build_helm
build_kubeconform
echo "binaries in $bin"
