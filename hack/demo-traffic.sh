#!/usr/bin/env bash
# `make demo`, the traffic part: a surge of HTTP requests on a Deployment powers on a machine
# its pods tolerate. The eBPF agent counts the requests per pod (cgroups named the way the
# kubelet names them), publishes a TrafficReport, and the manager turns the rising rate into
# network pressure. Self-contained: its own namespace, inventory, simulator, kwok node and
# agent; it reuses the demo's manager when one is up. Skips (exit 0) without root or BPF.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "traffic pressure: the eBPF agent and a surge of requests"
if [[ $(id -u) -ne 0 ]]; then echo "skipped: the eBPF agent needs root (CAP_BPF); run make demo as root to see it"; exit 0; fi
if [[ ! -r /sys/kernel/btf/vmlinux ]]; then echo "skipped: this kernel has no BTF (/sys/kernel/btf/vmlinux)"; exit 0; fi
if [[ ! -f bpf/build/Release/bamel_bpf.node || ! -f bpf/build/bpf/traffic.bpf.o ]]; then echo "skipped: the eBPF object and addon are not built (make bpf)"; exit 0; fi
eval "$(hack/cluster.sh env)"
logs="$root/.local/logs"
mkdir -p "$logs"
k() { kubectl "$@"; }
ns=bamel-demo-traffic
node_name=demo-traffic-node
# The cgroup v2 hierarchy, alone or in hybrid mode (as bamel agent finds it).
cgroot=$(grep -m1 ' - cgroup2 ' /proc/self/mountinfo | awk '{print $5}' || true)
[[ -n "$cgroot" ]] || { echo "skipped: no cgroup v2 hierarchy is mounted"; exit 0; }
cgbase="$cgroot/bamel-demo-traffic"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -d "$cgbase" ]]; then find "$cgbase" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
}
trap cleanup EXIT

# A clean slate (a previous run's objects).
k patch bma demo-traffic --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
k delete bma demo-traffic --ignore-not-found --wait=false >/dev/null
k delete namespace "$ns" --ignore-not-found --wait=true --timeout=60s >/dev/null
k delete node "$node_name" demo-traffic-other demo-traffic-edge --ignore-not-found >/dev/null
k delete trafficreport "$node_name" --ignore-not-found >/dev/null
if [[ -d "$cgbase" ]]; then find "$cgbase" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
port=$(free_port)
k create namespace "$ns" >/dev/null
k -n "$ns" create secret generic bmc --from-literal=username=admin --from-literal=password="demo-$RANDOM$RANDOM" >/dev/null
cat > "$logs/demo-traffic-inventory.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: machines, namespace: $ns, labels: {autoscaling.bamel.io/inventory: "true"}}
data:
  machines.yaml: |
    machines:
      - name: demo-traffic-other
        bmc: {address: "redfish+http://127.0.0.1:$port/redfish/v1/Systems/demo-traffic-other", credentialsSecret: bmc, allowInsecureCredentials: true}
        labels: {demo: traffic}
        taints: [{key: team, value: db, effect: NoSchedule}]
        capacity: {cpu: "4", memory: 8Gi, pods: "110"}
        bootSeconds: 3
      - name: demo-traffic-edge
        bmc: {address: "redfish+http://127.0.0.1:$port/redfish/v1/Systems/demo-traffic-edge", credentialsSecret: bmc, allowInsecureCredentials: true}
        labels: {demo: traffic}
        taints: [{key: traffic, value: edge, effect: NoSchedule}]
        capacity: {cpu: "16", memory: 64Gi, pods: "110"}
        bootSeconds: 3
YAML
k apply -f "$logs/demo-traffic-inventory.yaml" >/dev/null
node dist/cmd/bamel.js sim --inventory "$logs/demo-traffic-inventory.yaml" --boot-jitter 0 > "$logs/demo-traffic-sim.log" 2> "$logs/demo-traffic-sim.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$logs/demo-traffic-sim.log" 2>/dev/null && break; sleep 0.2; done
printf 'two powered-off machines: demo-traffic-other (4 CPUs, taint team=db) and demo-traffic-edge (16 CPUs, taint traffic=edge)\n'

if ! curl -fsS http://127.0.0.1:18081/readyz >/dev/null 2>&1; then
  k create namespace bamel-system --dry-run=client -o yaml | k apply -f - >/dev/null
  node dist/cmd/bamel.js manager --namespace bamel-system --leader-elect --metrics-bind-address 0 \
    --health-probe-bind-address 127.0.0.1:18091 2> "$logs/demo-traffic-manager.log" > /dev/null &
  pids+=($!)
fi

printf '\na node full with two replicas of "web" (2 CPUs each on 4); the pods tolerate traffic=edge:NoSchedule\n'
k create -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $node_name
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: $node_name, kubernetes.io/os: linux, demo: traffic}
status: {capacity: {cpu: "4", memory: 16Gi, pods: "110"}, allocatable: {cpu: "4", memory: 16Gi, pods: "110"}}
YAML
k apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $ns}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: $node_name
      nodeSelector: {demo: traffic}
      tolerations: [{key: traffic, operator: Equal, value: edge, effect: NoSchedule}]
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: registry.example/web:1, resources: {requests: {cpu: "2", memory: 1Gi}}}]
YAML
k -n "$ns" wait pod -l app=web --for=condition=Ready --timeout=60s >/dev/null
k -n "$ns" get pods -o wide

printf '\nthe pods'"'"' containers: HTTP servers in cgroups named as the kubelet names them (pod UID in the path)\n'
i=0
ports=()
for uid in $(k -n "$ns" get pods -l app=web -o jsonpath='{.items[*].metadata.uid}'); do
  i=$((i + 1))
  if [[ $i -eq 1 ]]; then cg="$cgbase/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice/cri-containerd-web$i.scope"
  else cg="$cgbase/kubepods/burstable/pod$uid/web$i"; fi
  mkdir -p "$cg"
  # The fixture server listens on p (HTTP/1.1) and p+1 (HTTP/2).
  p=$(free_port)
  while ! node -e "const s=require('net').createServer().listen($((p + 1)),'127.0.0.1',()=>s.close())" 2>/dev/null; do p=$(free_port); done
  sh -c 'echo $$ > "$0/cgroup.procs" && exec node test/fixtures/traffic/server.mjs 127.0.0.1 "$1"' "$cg" "$p" > /dev/null &
  pids+=($!)
  ports+=("$p")
  echo "  ${cg#"$cgroot"}"
done

printf '\nbamel agent --node-name %s (logs in .local/logs/demo-traffic-agent.log)\n' "$node_name"
node dist/cmd/bamel.js agent --node-name "$node_name" --poll-interval 1 --report-interval 1 --metrics-bind-address 127.0.0.1:18095 \
  2> "$logs/demo-traffic-agent.log" > /dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q 'agent started' "$logs/demo-traffic-agent.log" 2>/dev/null && break; sleep 0.2; done
grep -o '"attached":\[[^]]*\]' "$logs/demo-traffic-agent.log" | head -1

k apply -f - <<YAML
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: demo-traffic}
spec:
  inventory: {namespace: $ns, name: machines}
  machineSelector: {matchLabels: {demo: traffic}}
  maxMachines: 2
  scaleUp: {cooldownSeconds: 0}
  scaleDown: {enabled: false}
  pressure: {windowSeconds: 10, network: {requestsPerSecondRate: 300}}
YAML
k wait bma/demo-traffic --for=jsonpath='{.status.offMachines}'=2 --timeout=60s >/dev/null

printf '\nsteady traffic (10 requests/s per pod), then a surge doubling every second:\n'
node -e '
const http = require("http");
const ports = process.argv.slice(1).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const get = (port) => new Promise((r) => http.get({ host: "127.0.0.1", port, agent }, (res) => { res.resume(); res.on("end", r); }).on("error", r));
(async () => {
  const phases = [[10, 4], [20, 1], [40, 1], [80, 1], [160, 1], [320, 1], [320, 4]];
  for (const [rate, secs] of phases) {
    console.log(`  ${rate} requests/s per pod for ${secs}s`);
    const end = Date.now() + secs * 1000;
    while (Date.now() < end) { const t = Date.now(); await Promise.all(ports.flatMap((p) => Array.from({ length: rate / 10 }, () => get(p)))); await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t)))); }
  }
  agent.destroy();
})();' "${ports[@]}"

k wait bma/demo-traffic --for=jsonpath='{.status.lastScaleEvent.direction}'=Up --timeout=60s >/dev/null || true
printf '\nthe TrafficReport the agent wrote (kubectl get trafficreport %s):\n' "$node_name"
k get trafficreport "$node_name" -o jsonpath='{range .spec.pods[*]}  {.namespace}/{.name} (owner {.ownerKind}/{.ownerName}): {.requestsPerSecond} requests/s, {.bytesPerSecond} bytes/s{"\n"}{end}'
printf '\nthe autoscaler'"'"'s network pressure and what it did:\n'
k get bma demo-traffic -o jsonpath='{range .status.pressure[?(@.category=="network")]}  network: level {.level} requests/s, rising {.ratePerMinute}/min, pressured={.pressured}{"\n"}  {.reason}{"\n"}{end}'
k get bma demo-traffic -o jsonpath='{range .status.machines[*]}  {.name}{"\t"}{.phase}{"\n"}{end}'
k get events -n default --field-selector involvedObject.kind=BareMetalAutoscaler,involvedObject.name=demo-traffic \
  -o custom-columns=REASON:.reason,MESSAGE:.message | cut -c1-220
printf '\nper-pod series for Prometheus and KEDA (the agent'"'"'s /metrics):\n'
curl -fsS http://127.0.0.1:18095/metrics | grep -E '^bamel_agent_pod_http_requests_(total|per_second)' | head -6

# Its processes stop with it (trap); its objects go too, so no manager keeps calling its BMCs.
k patch bma demo-traffic --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
k delete bma demo-traffic --ignore-not-found --wait=false >/dev/null
k delete namespace "$ns" --ignore-not-found --wait=false >/dev/null
k delete node "$node_name" demo-traffic-edge --ignore-not-found >/dev/null
