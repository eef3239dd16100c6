#!/usr/bin/env bash
# Builds the peers that bench/peers.bench.ts runs beside bamel, from their Go modules (the Go
# module proxy only) into the binary cache (default ~/.cache/bamel, override BAMEL_CACHE),
# pinned in hack/versions.env:
#   karpenter-kwok            Karpenter's kwok provider (sigs.k8s.io/karpenter, main in kwok/),
#                             with its CRDs (NodePool, NodeClaim, NodeOverlay, CapacityBuffer and
#                             the kwok KWOKNodeClass) copied to $cache/peers/karpenter/crds/
#   cluster-autoscaler-kwok   Cluster Autoscaler with its kwok cloud provider (main in kwok/ of
#                             sigs.k8s.io/cluster-autoscaler, where the core moved in 2026)
#   hack/build-peers.sh crds  only fetches Karpenter's CRDs (no build) and prints their folder
# A second run reuses the cache. A peer that cannot be built is reported with the exact
# command and its error, also written to $cache/peers/<peer>.error (the bench reads it); the
# other peer is still built. The exit status is non-zero only when no peer could be built.
set -uo pipefail
# shellcheck source=binary-cache.sh
source "$(cd "$(dirname "$0")" && pwd)/binary-cache.sh"
peers="$cache/peers"
mkdir -p "$peers"

# Runs a command, its output to a log; on failure prints and records the command and the
# last lines of its error, and returns non-zero.
attempt() { # peer log command...
  local peer="$1" logfile="$2"
  shift 2
  if "$@" >"$logfile" 2>&1; then return 0; fi
  {
    printf 'command: (cd %q &&' "$PWD"
    printf ' %q' "$@"
    printf ')\n'
    [[ -n "${GOTOOLCHAIN:-}" ]] && printf 'with GOTOOLCHAIN=%s\n' "$GOTOOLCHAIN"
    echo 'error:'
    grep -v '^go: downloading' "$logfile" | tail -n 15
  } | tee "$peers/$peer.error" >&2
  return 1
}

# Karpenter's CRDs from its module (fetched through the module proxy when not cached).
karpenter_crds() { # dest
  local v="$KARPENTER_VERSION" src
  src="$(cd "$work" && GOTOOLCHAIN="$KARPENTER_GOTOOLCHAIN" go mod download -json "sigs.k8s.io/karpenter@$v" | sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')"
  [[ -n "$src" && -d "$src/kwok" ]] || { echo "sigs.k8s.io/karpenter@$v: no module folder (go mod download)" >&2; return 1; }
  rm -rf "$1" && mkdir -p "$1"
  cp "$src"/kwok/charts/crds/*.yaml "$src"/kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml "$1/"
  chmod u+w "$1"/*.yaml
  echo "$KARPENTER_VERSION" > "$1/.version"
}

build_karpenter() {
  local v="$KARPENTER_VERSION" name=karpenter-kwok
  local crds="$peers/karpenter/crds"
  if stamp_ok "$name" "$v" && [[ -f "$crds/.version" && "$(cat "$crds/.version")" == "$v" ]]; then
    echo "karpenter $v: cached"
    rm -f "$peers/karpenter.error"
    return 0
  fi
  echo "building karpenter $v (kwok provider, Go $KARPENTER_GOTOOLCHAIN)"
  local dir="$work/karpenter-$v"
  mkdir -p "$dir/bin"
  (
    cd "$dir" || exit 1
    # Its go.mod names a newer Go than Debian's: the go command takes that toolchain from
    # the module proxy. It has no replace directives, so a plain go install builds it.
    export GOTOOLCHAIN="$KARPENTER_GOTOOLCHAIN"
    attempt karpenter "$dir/build.log" env GOBIN="$dir/bin" CGO_ENABLED=0 \
      go install -trimpath -ldflags "-s -w" "sigs.k8s.io/karpenter/kwok@$v" || exit 1
    # The binary is named after its folder (kwok): renamed so it is not taken for kwok itself.
    mv "$dir/bin/kwok" "$bin/$name"
    karpenter_crds "$crds" || exit 1
  ) || return 1
  stamp "$name" "$v"
  rm -f "$peers/karpenter.error"
}

build_cluster_autoscaler() {
  local m="$CLUSTER_AUTOSCALER_MODULE" v="$CLUSTER_AUTOSCALER_VERSION" name=cluster-autoscaler-kwok
  if stamp_ok "$name" "$v"; then
    echo "cluster-autoscaler $v: cached"
    rm -f "$peers/cluster-autoscaler.error"
    return 0
  fi
  echo "building cluster-autoscaler $m@$v (kwok provider)"
  local dir="$work/cluster-autoscaler-$v"
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    # A wrapper module: Cluster Autoscaler's go.mod pins every Kubernetes staging module
    # with replace directives, which Go honours only in the main module: copy them here.
    if [[ ! -f go.sum ]]; then
      rm -f go.mod tools.go
      go mod init bamel.local/cluster-autoscaler-build >/dev/null 2>&1
      attempt cluster-autoscaler "$dir/download.log" go mod download "$m@$v" || exit 1
      go mod edit -require="$m@$v"
      local modfile
      modfile="$(go env GOMODCACHE)/cache/download/$m/@v/$v.mod"
      sed -nE 's/^\s*replace\s+(\S+)\s+=>\s+(\S+)\s+(v\S+)\s*$/\1 \2 \3/p' "$modfile" | while read -r from to ver; do
        go mod edit -replace="$from=$to@$ver"
      done
      printf '//go:build tools\n\npackage tools\n\nimport _ "%s/kwok"\n' "$m" > tools.go
      attempt cluster-autoscaler "$dir/tidy.log" go mod tidy -e || exit 1
    fi
    attempt cluster-autoscaler "$dir/build.log" go build -trimpath -ldflags "-s -w" -o "$bin/$name" "$m/kwok" || exit 1
  ) || return 1
  stamp "$name" "$v"
  rm -f "$peers/cluster-autoscaler.error"
}

if [[ "${1:-}" == crds ]]; then
  dest="$peers/karpenter/crds"
  if [[ ! -f "$dest/.version" || "$(cat "$dest/.version")" != "$KARPENTER_VERSION" ]]; then karpenter_crds "$dest" >&2 || exit 1; fi
  echo "$dest"
  exit 0
fi

built=0 failed=()
if build_karpenter; then built=$((built + 1)); else failed+=(karpenter); fi
if build_cluster_autoscaler; then built=$((built + 1)); else failed+=(cluster-autoscaler); fi
for p in "${failed[@]}"; do echo "NOT BUILT: $p (command and error in $peers/$p.error)" >&2; done
echo "peers in $bin: $built built"
[[ $built -gt 0 ]]
