#!/usr/bin/env bash
# A real node for the local datacenter, beside kwok's simulated ones (root only):
# containerd + runc, a kubelet built from the pinned Kubernetes module, pod networking on a
# bridge of its own (Debian's CNI plugins: bridge, host-local), registered to the local
# control plane (hack/cluster.sh).
#
#   hack/node.sh up [IMG]    start (a no-op when it runs) and import the image archive
#   hack/node.sh down        stop what `up` started, remove the bridge
#   hack/node.sh status
#   hack/node.sh import      import dist/bamel-autoscaler.oci.tar (tagged IMG) again
#   hack/node.sh env         what pods need to reach the API server (for helm --set)
#
# Pods have their own network namespace: they reach the host only at the bridge's address
# (BAMEL_NODE_BRIDGE_IP, default 10.89.0.1). The API server listens on 127.0.0.1 only, so a
# forwarder (socat) listens on the bridge address and port BAMEL_APISERVER_PORT, and pods
# name it kubernetes.default.svc (hostAliases, a name its certificate has). There is no
# kube-proxy (it would change the host's firewall): the API server calls webhooks at their
# pods' addresses (--enable-aggregator-routing, set by hack/cluster.sh).
#
# This host's cgroups are v1 (hybrid): the kubelet runs with failCgroupV1: false and the
# cgroupfs driver; containerd's CRI restricts oom_score_adj (no CAP_SYS_RESOURCE here). No
# image can be pulled: the sandbox ("pause") image is a static C program built here.
#
# State in .local/node/ (containerd's and the kubelet's directories, logs, pids).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BAMEL_CACHE:-$HOME/.cache/bamel}"
bin="$cache/bin"
local_dir="${BAMEL_LOCAL:-$root/.local}"
pki="$local_dir/pki"
state="$local_dir/node"
logs="$state/logs"
pids="$state/pids"
api_port="${BAMEL_APISERVER_PORT:-16443}"
node_name="${BAMEL_NODE_NAME:-bamel-node}"
bridge="${BAMEL_NODE_BRIDGE:-bamel0}"
bridge_ip="${BAMEL_NODE_BRIDGE_IP:-10.89.0.1}"
pod_cidr="${BAMEL_NODE_POD_CIDR:-10.89.0.0/24}"
kubelet_port="${BAMEL_KUBELET_PORT:-10250}"
img="${IMG:-bamel-autoscaler:dev}"
archive="${BAMEL_IMAGE_ARCHIVE:-$root/dist/bamel-autoscaler.oci.tar}"
sock="$state/containerd.sock"
pause_ref="bamel.local/pause:3.10"
components=(containerd kubelet api-forward)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

running_pid() { # name
  local f="$pids/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$(cat "$pids/$1.match" 2>/dev/null || echo "$1")" || return 1
  echo "$pid"
}

start() { # name match command...
  local name="$1" match="$2"; shift 2
  running_pid "$name" >/dev/null && return 0
  log "starting $name"
  echo "$match" > "$pids/$name.match"
  setsid "$@" > "$logs/$name.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$pids/$name.pid"
  # Until the exec has happened /proc shows the forked shell: wait for it (or the exit), so
  # that a check right after does not take a starting process for a dead one.
  for _ in $(seq 1 100); do
    [[ -r "/proc/$pid/cmdline" ]] || break
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$match" && break
    sleep 0.05
  done
}

stop() { # name
  local pid
  if pid="$(running_pid "$1")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$pids/$1.pid" "$pids/$1.match"
}

wait_for() { # what seconds command...
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    (( SECONDS > deadline )) && die "$what did not come up within ${secs}s; see $logs"
    sleep 0.5
  done
}

k() { "$bin/kubectl" --kubeconfig "$local_dir/kubeconfig" "$@"; }
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

preflight() {
  [[ $(id -u) -eq 0 ]] || die "the real node needs root (containerd, runc, the kubelet, a bridge)"
  local c
  for c in containerd runc ctr socat ip gcc buildah; do command -v "$c" >/dev/null || die "$c is missing: run make system-deps"; done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || die "the CNI plugins are missing: run make system-deps (containernetworking-plugins)"
  [[ -x "$bin/kubelet" ]] || die "$bin/kubelet is missing: run make binaries"
  [[ -f "$local_dir/kubeconfig" ]] || die "the local control plane is not up: run make cluster-up"
  k get --raw /readyz >/dev/null 2>&1 || die "the local API server does not answer: run make cluster-up"
  local apiserver
  apiserver="$(cat "$local_dir/pids/kube-apiserver.pid" 2>/dev/null || true)"
  if [[ -n "$apiserver" ]] && ! tr '\0' ' ' < "/proc/$apiserver/cmdline" 2>/dev/null | grep -q -- '--enable-aggregator-routing'; then
    die "the local API server runs without --enable-aggregator-routing (started by an older hack/cluster.sh): hack/cluster.sh down && hack/cluster.sh up"
  fi
}

# The sandbox image: a process that sleeps until told to stop, in an OCI archive.
pause_image() {
  local dir="$cache/node" out="$cache/node/pause.oci.tar"
  [[ -f "$out" ]] && { echo "$out"; return; }
  mkdir -p "$dir/pause-ctx"
  cat > "$dir/pause-ctx/pause.c" <<'C'
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
  return 0;
}
C
  gcc -static -O2 -s -o "$dir/pause-ctx/pause" "$dir/pause-ctx/pause.c"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$dir/pause-ctx/Containerfile"
  local b=(buildah --root "$dir/storage/root" --runroot "$dir/storage/run" --storage-driver vfs)
  "${b[@]}" bud --quiet --isolation chroot --timestamp 0 --format oci -f "$dir/pause-ctx/Containerfile" -t "$pause_ref" "$dir/pause-ctx" >/dev/null
  "${b[@]}" push --quiet --format oci "$pause_ref" "oci-archive:$out:$pause_ref" >/dev/null
  "${b[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$dir/storage"
  echo "$out"
}

# The kubelet's client certificate: the Node authorizer knows it as system:node:<name>.
kubelet_kubeconfig() {
  local crt="$state/pki/kubelet-client.crt" key="$state/pki/kubelet-client.key"
  mkdir -p "$state/pki"
  if [[ ! -f "$crt" ]] || ! openssl x509 -in "$crt" -noout -subject 2>/dev/null | grep -q "system:node:$node_name"; then
    (
      umask 077
      printf 'extendedKeyUsage=clientAuth\n' > "$state/pki/client.ext"
      openssl req -newkey rsa:2048 -nodes -keyout "$key" -out "$state/pki/kubelet.csr" \
        -subj "/O=system:nodes/CN=system:node:$node_name" >/dev/null 2>&1
      openssl x509 -req -in "$state/pki/kubelet.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -out "$crt" -days 3650 -extfile "$state/pki/client.ext" >/dev/null 2>&1
      rm -f "$state/pki/kubelet.csr" "$state/pki/client.ext"
    )
  fi
  cat > "$state/kubelet.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: bamel-local
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}
users:
- name: kubelet
  user: {client-certificate: "$crt", client-key: "$key"}
contexts:
- name: bamel-local
  context: {cluster: bamel-local, user: kubelet}
current-context: bamel-local
KC
  chmod 600 "$state/kubelet.kubeconfig"
}

write_configs() {
  mkdir -p "$state/cni/net.d" "$state/containerd" "$state/kubelet"
  cat > "$state/containerd/config.toml" <<TOML
version = 2
root = "$state/containerd/root"
state = "/run/bamel-node/containerd"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  # This VM has no CAP_SYS_RESOURCE: runc may not lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
TOML
  # No ipMasq: pods talk to the host only, and the host's firewall stays as it is.
  cat > "$state/cni/net.d/10-bamel.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "bamel",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr", "gateway": "$bridge_ip"}]],
              "dataDir": "$state/cni/ipam"}},
    {"type": "loopback"}
  ]
}
JSON
  cat > "$state/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$bridge_ip"
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
# This host's cgroups are v1 (hybrid).
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: "unix://$sock"
podLogsDir: "$state/pod-logs"
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
maxPods: 30
serializeImagePulls: false
# The images are imported, never pulled: none may be collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
YAML
}

# The agent attaches tracepoints by their ids under tracefs, which this host does not mount.
tracefs_up() {
  grep -q ' /sys/kernel/tracing tracefs ' /proc/self/mounts && return 0
  mount -t tracefs tracefs /sys/kernel/tracing
  touch "$state/tracefs.mounted"
}

bridge_up() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    touch "$state/bridge.created"
  fi
  ip addr show dev "$bridge" | grep -q "inet $bridge_ip/" || ip addr add "$bridge_ip/${pod_cidr#*/}" dev "$bridge"
  ip link set "$bridge" up
}

cmd_import() {
  [[ -f "$archive" ]] || die "$archive is missing: run make image IMG=$img"
  log "importing $archive as $img"
  ctr_ images import --no-unpack=false "$archive" >/dev/null
  # The kubelet asks for normalized names: docker.io/library/NAME:TAG for a bare name,
  # docker.io/ORG/NAME:TAG without a registry host.
  local first="${img%%/*}" ref name
  if [[ "$img" != */* ]]; then ref="docker.io/library/$img"
  elif [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then ref="$img"
  else ref="docker.io/$img"; fi
  name="$(ctr_ images ls -q | grep -Fx -e "$img" -e "$ref" | head -1 || true)"
  [[ -n "$name" ]] || die "the archive does not hold an image named $img (make image IMG=$img)"
  [[ "$name" == "$ref" ]] || ctr_ images tag --force "$name" "$ref" >/dev/null
}

cmd_up() {
  preflight
  mkdir -p "$logs" "$pids" /run/bamel-node
  if running_pid kubelet >/dev/null && running_pid containerd >/dev/null && running_pid api-forward >/dev/null; then
    log "node $node_name already up"
    [[ -f "$archive" ]] && cmd_import
    return 0
  fi
  local t0=$SECONDS pause
  pause="$(pause_image)"
  write_configs
  kubelet_kubeconfig
  bridge_up
  tracefs_up
  start containerd "containerd --config $state/containerd/config.toml" containerd --config "$state/containerd/config.toml"
  wait_for containerd 30 containerd_ready
  ctr_ images import "$pause" >/dev/null
  [[ -f "$archive" ]] && cmd_import
  start api-forward "socat TCP-LISTEN:$api_port,bind=$bridge_ip" \
    socat "TCP-LISTEN:$api_port,bind=$bridge_ip,fork,reuseaddr" "TCP:127.0.0.1:$api_port"
  start kubelet "$bin/kubelet" "$bin/kubelet" --config "$state/kubelet/config.yaml" \
    --kubeconfig "$state/kubelet.kubeconfig" --root-dir "$state/kubelet/root" \
    --hostname-override "$node_name" --node-ip "$bridge_ip" \
    --node-labels "bamel.io/real-node=true"
  wait_for "Node $node_name Ready" 120 node_ready
  log "node $node_name up in $((SECONDS - t0))s (pods on $pod_cidr, the host at $bridge_ip)"
}

node_ready() {
  running_pid kubelet >/dev/null || { tail -n 20 "$logs/kubelet.log" >&2; die "the kubelet exited; see $logs/kubelet.log"; }
  [[ "$(k get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

cmd_down() {
  # The kubelet first (it stops no containers on exit), then every pod sandbox, then
  # containerd; the Node object goes so the scheduler does not wait for it.
  stop kubelet
  if running_pid containerd >/dev/null; then
    local p
    for p in $(crictl_pods); do ctr_ tasks kill -s SIGKILL "$p" >/dev/null 2>&1 || true; done
    for p in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$p" >/dev/null 2>&1 || true; done
    sleep 1
    for p in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete --force "$p" >/dev/null 2>&1 || true; done
    for p in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$p" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  stop api-forward
  # Whatever the shims left: mounts of sandboxes and volumes under our directories.
  grep -E " ($state|/run/bamel-node)[^ ]* " /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # Network namespaces the CNI plugin made are gone with their sandboxes; the bridge is ours.
  if [[ -f "$state/bridge.created" ]]; then ip link del "$bridge" 2>/dev/null || true; rm -f "$state/bridge.created"; fi
  rm -rf "$state/cni/ipam"
  if [[ -f "$state/tracefs.mounted" ]]; then umount /sys/kernel/tracing 2>/dev/null || true; rm -f "$state/tracefs.mounted"; fi
  if [[ -f "$local_dir/kubeconfig" ]]; then k delete node "$node_name" --ignore-not-found --wait=false >/dev/null 2>&1 || true; fi
  log "node $node_name down"
}

containerd_ready() { ctr_ version >/dev/null 2>&1; }

crictl_pods() { ctr_ containers ls -q 2>/dev/null || true; }

cmd_status() {
  local c pid rc=0
  for c in "${components[@]}"; do
    if pid="$(running_pid "$c")"; then printf '%-14s running (pid %s)\n' "$c" "$pid"; else printf '%-14s stopped\n' "$c"; rc=1; fi
  done
  k get node "$node_name" 2>/dev/null || rc=1
  return $rc
}

# Helm values for pods on this node: the API server through the forwarder.
cmd_env() {
  printf 'BAMEL_NODE_NAME=%s\nBAMEL_NODE_BRIDGE_IP=%s\nBAMEL_APISERVER_PORT=%s\n' "$node_name" "$bridge_ip" "$api_port"
}

case "${1:-}" in
  up) shift; [[ -n "${1:-}" ]] && img="$1"; cmd_up ;;
  down) [[ $(id -u) -eq 0 ]] || die "the real node needs root"; mkdir -p "$pids"; cmd_down ;;
  status) cmd_status ;;
  import) shift; [[ -n "${1:-}" ]] && img="$1"; cmd_import ;;
  env) cmd_env ;;
  *) echo "usage: $0 up [IMG] | down | status | import [IMG] | env" >&2; exit 2 ;;
esac
