#!/usr/bin/env bash
# Installs bamel into the cluster of the current kubeconfig, from config/default (kustomize)
# or the Helm chart, with the image IMG.
#
#   hack/deploy.sh installer [IMG]   write dist/install.yaml (config/default, image set)
#   hack/deploy.sh deploy [IMG]      apply it (DEPLOY_WITH=helm: helm upgrade --install)
#   hack/deploy.sh undeploy          remove it; CRDs, your autoscalers, inventories,
#                                    Secrets and the namespace stay (make uninstall drops CRDs)
#
# On the local datacenter with its real node up (make node-up), pods reach the API server
# through the node's bridge address: the Deployment and DaemonSet get the environment and
# host alias for that (see hack/node.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${BAMEL_CACHE:-$HOME/.cache/bamel}"
bin="$cache/bin"
local_dir="${BAMEL_LOCAL:-$root/.local}"
api_port="${BAMEL_APISERVER_PORT:-16443}"
img="${IMG:-bamel-autoscaler:dev}"
with="${DEPLOY_WITH:-kustomize}"
namespace=bamel-system
release=bamel

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
k() { "$bin/kubectl" "$@"; }

# IMG as repository and tag (or digest).
split_image() {
  local last="${img##*/}"
  if [[ "$img" == *@* ]]; then repo="${img%@*}"; tag="@${img#*@}"
  elif [[ "$last" == *:* ]]; then repo="${img%:*}"; tag="${img##*:}"
  else repo="$img"; tag=latest; fi
}

# The local datacenter with its real node: the kubeconfig's server is the local API server
# and hack/node.sh runs.
local_node() {
  local server
  server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null || true)"
  [[ "$server" == "https://127.0.0.1:$api_port" ]] && hack/node.sh status >/dev/null 2>&1
}

bridge_ip() { hack/node.sh env | sed -n 's/^BAMEL_NODE_BRIDGE_IP=//p'; }

render() { # out-file
  split_image
  local dir="$local_dir/deploy"
  rm -rf "$dir" && mkdir -p "$dir"
  {
    printf 'resources:\n  - %s\n' "$(realpath --relative-to="$dir" "$root/config/default")"
    if [[ "$tag" == @* ]]; then printf 'images:\n  - {name: bamel-autoscaler, newName: "%s", digest: "%s"}\n' "$repo" "${tag#@}"
    else printf 'images:\n  - {name: bamel-autoscaler, newName: "%s", newTag: "%s"}\n' "$repo" "$tag"; fi
    if [[ "${BAMEL_DEPLOY_LOCAL_NODE:-}" == 1 ]]; then
      local ip kind
      ip="$(bridge_ip)"
      printf 'patches:\n'
      for kind in Deployment DaemonSet; do
        cat <<PATCH
  - target: {kind: $kind}
    patch: |
      - {op: add, path: /spec/template/spec/hostAliases, value: [{ip: "$ip", hostnames: [kubernetes.default.svc]}]}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: KUBERNETES_SERVICE_HOST, value: kubernetes.default.svc}}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: KUBERNETES_SERVICE_PORT, value: "$api_port"}}
PATCH
      done
    fi
  } > "$dir/kustomization.yaml"
  k kustomize "$dir" > "$1"
}

helm_local_args() {
  local ip
  ip="$(bridge_ip)"
  printf '%s\n' --set "hostAliases[0].ip=$ip" --set "hostAliases[0].hostnames[0]=kubernetes.default.svc" \
    --set "extraEnv[0].name=KUBERNETES_SERVICE_HOST" --set "extraEnv[0].value=kubernetes.default.svc" \
    --set "extraEnv[1].name=KUBERNETES_SERVICE_PORT" --set-string "extraEnv[1].value=$api_port"
}

cmd_installer() {
  mkdir -p dist
  BAMEL_DEPLOY_LOCAL_NODE=0 render dist/install.yaml
  log "wrote dist/install.yaml ($img): kubectl apply --server-side -f dist/install.yaml"
}

cmd_deploy() {
  local is_local=0
  if local_node; then
    is_local=1
    hack/node.sh import "$img" >/dev/null
  fi
  if [[ "$with" == helm ]]; then
    split_image
    local args=()
    [[ $is_local == 1 ]] && mapfile -t args < <(helm_local_args)
    # --force-conflicts: CRDs applied before with kubectl (make install) change hands.
    "$bin/helm" upgrade --install "$release" helm/bamel-autoscaler --namespace "$namespace" --create-namespace --force-conflicts \
      --set "image.repository=$repo" --set-string "image.tag=$tag" "${args[@]}" --wait --timeout 5m
  else
    BAMEL_DEPLOY_LOCAL_NODE=$is_local render "$local_dir/deploy/install.yaml"
    k apply --server-side --force-conflicts -f "$local_dir/deploy/install.yaml"
    k -n "$namespace" rollout status deployment/bamel-manager --timeout 5m
  fi
}

cmd_undeploy() {
  if [[ "$with" == helm ]]; then
    "$bin/helm" uninstall "$release" --namespace "$namespace" --ignore-not-found --wait
    return
  fi
  BAMEL_DEPLOY_LOCAL_NODE=0 render "$local_dir/deploy/undeploy.yaml"
  # Everything but the CRDs (they hold your autoscalers) and the namespace (your inventory
  # and its Secrets live there).
  node -e '
    const fs = require("fs");
    const docs = fs.readFileSync(process.argv[1], "utf8").split(/^---$/m);
    const keep = docs.filter((d) => !/^kind: (CustomResourceDefinition|Namespace)$/m.test(d));
    fs.writeFileSync(process.argv[1], keep.join("---"));
  ' "$local_dir/deploy/undeploy.yaml"
  k delete --ignore-not-found --wait=true -f "$local_dir/deploy/undeploy.yaml"
}

case "${1:-}" in
  installer) [[ -n "${2:-}" ]] && img="$2"; cmd_installer ;;
  deploy) [[ -n "${2:-}" ]] && img="$2"; cmd_deploy ;;
  undeploy) cmd_undeploy ;;
  *) echo "usage: $0 installer [IMG] | deploy [IMG] | undeploy" >&2; exit 2 ;;
esac
