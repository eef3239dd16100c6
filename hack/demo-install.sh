#!/usr/bin/env bash
# The install in the demo (called by hack/demo.sh; root only, skipped otherwise): the image
# built without a Docker engine, a real node beside kwok's (containerd and a kubelet), the
# Helm chart installed on it, the manager pods leading and answering admission with the
# certificate they made, the agent attached; then the chart and the node removed.
#
# The demo's own manager (on the host) keeps its autoscalers: this install runs in its own
# namespace and manages only autoscalers labelled bamel.io/demo=install.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(hack/cluster.sh env)"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
indent() { sed 's/^/  /'; }
ns=bamel-install
img=bamel-autoscaler:demo
archive="$root/.local/demo-image.oci.tar"

if [[ $(id -u) -ne 0 ]]; then
  step "the install on a real node: skipped (root only: containerd, runc, the kubelet, a bridge)"
  exit 0
fi

node_started=0
cleanup() {
  "$BAMEL_BIN/helm" uninstall bamel-demo -n "$ns" --ignore-not-found --wait >/dev/null 2>&1 || true
  kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  if [[ $node_started == 1 ]]; then hack/node.sh down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "the image: make image (no Docker engine; reproducible)"
BAMEL_IMAGE_ARCHIVE="$archive" hack/image.sh build "$img" 2>/dev/null | indent

step "a real node beside kwok's: make node-up (containerd, runc, a kubelet, a CNI bridge)"
hack/node.sh status >/dev/null 2>&1 || node_started=1
BAMEL_IMAGE_ARCHIVE="$archive" hack/node.sh up "$img" 2>&1 | grep -v '^$' | tail -n 2 | indent
kubectl get nodes -o wide -l bamel.io/real-node=true | indent
eval "$(hack/node.sh env | sed 's/^/export /')"

step "helm install: the chart on the real node"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
"$BAMEL_BIN/helm" install bamel-demo helm/bamel-autoscaler -n "$ns" \
  --set image.tag=demo --set "inventoryNamespaces={$ns}" \
  --set "manager.extraArgs={--autoscaler-selector=bamel.io/demo=install}" \
  --set "hostAliases[0].ip=$BAMEL_NODE_BRIDGE_IP" --set "hostAliases[0].hostnames[0]=kubernetes.default.svc" \
  --set extraEnv[0].name=KUBERNETES_SERVICE_HOST --set extraEnv[0].value=kubernetes.default.svc \
  --set extraEnv[1].name=KUBERNETES_SERVICE_PORT --set-string "extraEnv[1].value=$BAMEL_APISERVER_PORT" \
  --wait --timeout 3m | sed -n '1,5p' | indent
kubectl -n "$ns" get pods -o wide | indent
printf 'the leader: '
kubectl -n "$ns" get lease bamel-manager -o jsonpath='{.spec.holderIdentity}'; echo

step "the webhook, through its Service, with the certificate the manager made"
kubectl -n "$ns" get secret bamel-webhook-server-cert -o jsonpath='{.data.tls\.crt}' | base64 -d | openssl x509 -noout -subject -issuer -enddate | indent
cat <<YAML | kubectl apply -f - 2>&1 | indent || true
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: demo-install-bad, labels: {bamel.io/demo: install}}
spec:
  inventory: {namespace: $ns, name: no-such-inventory}
  maxMachines: 2
YAML

step "the agent on the real node: not privileged, eBPF attached"
kubectl -n "$ns" get pods -l app.kubernetes.io/component=agent -o wide | indent
for _ in $(seq 1 30); do kubectl get trafficreport "$BAMEL_NODE_NAME" >/dev/null 2>&1 && break; sleep 1; done
kubectl get trafficreport "$BAMEL_NODE_NAME" -o jsonpath='{range .spec.pods[*]}{.namespace}/{.name}{"\n"}{end}' | indent

step "helm uninstall: what you own stays (CRDs, autoscalers, inventories)"
"$BAMEL_BIN/helm" uninstall bamel-demo -n "$ns" --wait | indent
