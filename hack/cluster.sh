#!/usr/bin/env bash
# The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# (built from their Go modules by hack/build-binaries.sh) and kwok, on 127.0.0.1.
#
#   hack/cluster.sh up       start (a no-op when it is already up)
#   hack/cluster.sh down     stop the processes this script started, and only those
#   hack/cluster.sh status   say what runs and whether the API server is healthy
#   hack/cluster.sh stop C   stop one component (tests of an API server outage); `up` starts it again
#   hack/cluster.sh env      print the environment (KUBECONFIG, BAMEL_BIN) for a shell
#
# State lives in .local/ (git-ignored): kubeconfig, certificates, etcd data, logs/, pids/.
# BAMEL_CLUSTER_FRESH=1 wipes etcd's data on `up` for a clean cluster.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BAMEL_CACHE:-$HOME/.cache/bamel}"
bin="$cache/bin"
state="${BAMEL_LOCAL:-$root/.local}"
pki="$state/pki"
logs="$state/logs"
pids="$state/pids"
etcd_port="${BAMEL_ETCD_PORT:-12379}"
etcd_peer_port="$((etcd_port + 1))"
api_port="${BAMEL_APISERVER_PORT:-16443}"
kcm_port="${BAMEL_KCM_PORT:-20257}"
sched_port="${BAMEL_SCHEDULER_PORT:-20259}"
kwok_port="${BAMEL_KWOK_PORT:-20247}"
# Where kube-scheduler finds bamel's extender (a `bamel manager --extender-bind-address`).
extender_port="${BAMEL_EXTENDER_PORT:-20290}"
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A pid file names a process we started; trust it only if that pid still runs our binary.
running_pid() {
  local name="$1" f="$pids/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$bin/$name" || return 1
  echo "$pid"
}

api_healthy() {
  [[ -f "$pki/ca.crt" ]] || return 1
  curl -fsS --max-time 2 --cacert "$pki/ca.crt" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1
}

all_running() {
  local c
  for c in "${components[@]}"; do running_pid "$c" >/dev/null || return 1; done
}

gen_certs() {
  mkdir -p "$pki"
  [[ -f "$pki/ca.crt" && -f "$pki/sa.key" && -f "$pki/admin.crt" && -f "$pki/front-proxy-client.crt" ]] && return 0
  log "generating certificates in $pki"
  (
    cd "$pki"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=bamel-local-ca" >/dev/null 2>&1
    cat > apiserver.ext <<EXT
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EXT
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" >/dev/null 2>&1
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt \
      -days 3650 -extfile apiserver.ext >/dev/null 2>&1
    # Client identities: the admin (system:masters) and each component's own user, so RBAC
    # applies to them as in a real cluster.
    for who in "admin:/O=system:masters/CN=bamel-admin" \
               "controller-manager:/CN=system:kube-controller-manager" \
               "scheduler:/CN=system:kube-scheduler" \
               "kwok:/O=system:masters/CN=kwok-controller"; do
      local_name="${who%%:*}"; subj="${who#*:}"
      printf 'extendedKeyUsage=clientAuth\n' > client.ext
      openssl req -newkey rsa:2048 -nodes -keyout "$local_name.key" -out "$local_name.csr" -subj "$subj" >/dev/null 2>&1
      openssl x509 -req -in "$local_name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$local_name.crt" \
        -days 3650 -extfile client.ext >/dev/null 2>&1
    done
    # The front proxy (aggregation layer) has a CA of its own, as in kubeadm clusters.
    openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 \
      -subj "/CN=bamel-local-front-proxy-ca" >/dev/null 2>&1
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr -subj "/CN=front-proxy-client" >/dev/null 2>&1
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
      -out front-proxy-client.crt -days 3650 -extfile client.ext >/dev/null 2>&1
    openssl genrsa -out sa.key 2048 >/dev/null 2>&1
    openssl rsa -in sa.key -pubout -out sa.pub >/dev/null 2>&1
    rm -f ./*.csr ./*.ext
  )
}

# The API server's client certificate towards kubelets (logs, exec on the real node:
# hack/node.sh). Made apart from the others so that an existing pki/ gains it unchanged.
gen_kubelet_client_cert() {
  [[ -f "$pki/apiserver-kubelet-client.crt" ]] && return 0
  (
    cd "$pki"
    umask 077
    printf 'extendedKeyUsage=clientAuth\n' > kubelet-client.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet-client.key -out apiserver-kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" >/dev/null 2>&1
    openssl x509 -req -in apiserver-kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver-kubelet-client.crt -days 3650 -extfile kubelet-client.ext >/dev/null 2>&1
    rm -f apiserver-kubelet-client.csr kubelet-client.ext
  )
}

write_kubeconfig() { # file user
  local file="$1" user="$2"
  cat > "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: bamel-local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: bamel-local
  context: {cluster: bamel-local, user: $user}
current-context: bamel-local
KC
  chmod 600 "$file"
}

start() { # name args...
  local name="$1"; shift
  if running_pid "$name" >/dev/null; then return 0; fi
  log "starting $name"
  # setsid: the component outlives this script, and `down` can stop its whole group.
  setsid "$bin/$name" "$@" >"$logs/$name.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$pids/$name.pid"
  # Until the exec has happened, /proc shows the forked shell, not the component: on a busy
  # machine a check right away would take a starting component for a dead one. Wait for the
  # exec (or the exit).
  local _
  for _ in $(seq 1 100); do
    [[ -r "/proc/$pid/cmdline" ]] || break
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$bin/$name" && break
    sleep 0.05
  done
}

# A component that exited (a port in use, a bad flag) fails the start at once, with its log.
check_alive() {
  local c
  for c in "${components[@]}"; do
    [[ -f "$pids/$c.pid" ]] || continue
    if ! running_pid "$c" >/dev/null; then
      tail -n 5 "$logs/$c.log" >&2 || true
      die "$c exited during start-up; see $logs/$c.log"
    fi
  done
}

wait_for() { # what seconds command...
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    check_alive
    if (( SECONDS > deadline )); then
      die "$what did not come up within ${secs}s; see $logs"
    fi
    sleep 0.2
  done
}

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"'; }
secure_healthz() { curl -fsSk --max-time 2 "https://127.0.0.1:$1/healthz" >/dev/null 2>&1; }
default_sa_exists() { "$bin/kubectl" --kubeconfig "$state/kubeconfig" get serviceaccount default -n default -o name >/dev/null 2>&1; }
kwok_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$kwok_port/healthz" >/dev/null 2>&1; }

# The scheduler's configuration from config/scheduler/ with this cluster's paths and ports.
render_scheduler_config() {
  sed -e "s#KUBECONFIG_PATH#$state/scheduler.kubeconfig#" \
      -e "s#EXTENDER_URL_PREFIX#http://127.0.0.1:$extender_port/extender#" \
      "$root/config/scheduler/kube-scheduler-config.yaml"
}

# A running cluster whose scheduler configuration changed (config/scheduler/ edited, another
# BAMEL_EXTENDER_PORT): only kube-scheduler is restarted.
refresh_scheduler() {
  if render_scheduler_config | cmp -s - "$state/kube-scheduler-config.yaml"; then return 0; fi
  log "kube-scheduler configuration changed: restarting kube-scheduler"
  render_scheduler_config > "$state/kube-scheduler-config.yaml"
  stop_scheduler
  start_scheduler
  wait_for kube-scheduler 60 secure_healthz "$sched_port"
}

stop_scheduler() {
  local pid
  if pid="$(running_pid kube-scheduler)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pids/kube-scheduler.pid"
}

start_scheduler() {
  start kube-scheduler \
    --config "$state/kube-scheduler-config.yaml" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" \
    --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --profiling=false
}

cmd_up() {
  if all_running && api_healthy; then
    refresh_scheduler
    log "local cluster already up (KUBECONFIG=$state/kubeconfig)"
    return 0
  fi
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
    [[ -x "$bin/$c" ]] || die "$bin/$c is missing: run hack/build-binaries.sh (make binaries) first"
  done
  command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"
  command -v curl >/dev/null || die "curl is missing: apt-get install curl"
  mkdir -p "$logs" "$pids"
  if [[ "${BAMEL_CLUSTER_FRESH:-}" == 1 ]]; then
    cmd_down >/dev/null 2>&1 || true
    rm -rf "$state/etcd"
  fi
  gen_certs
  gen_kubelet_client_cert
  write_kubeconfig "$state/kubeconfig" admin
  write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$state/scheduler.kubeconfig" scheduler
  write_kubeconfig "$state/kwok.kubeconfig" kwok
  # A scheduler still running from before with another configuration starts anew.
  if [[ -f "$state/kube-scheduler-config.yaml" ]] && ! render_scheduler_config | cmp -s - "$state/kube-scheduler-config.yaml"; then
    stop_scheduler
  fi
  render_scheduler_config > "$state/kube-scheduler-config.yaml"
  local t0=$SECONDS

  local fsync=()
  "$bin/etcd" --help 2>&1 | grep -q -- '--unsafe-no-fsync' && fsync=(--unsafe-no-fsync)
  start etcd --name bamel-local --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "bamel-local=http://127.0.0.1:$etcd_peer_port" \
    --quota-backend-bytes 4294967296 --log-level warn "${fsync[@]}"
  wait_for etcd 60 etcd_healthy

  start kube-apiserver \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,PodSecurity,Priority,DefaultStorageClass,StorageObjectInUseProtection,PersistentVolumeClaimResize,RuntimeClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --enable-aggregator-routing=true \
    --allow-privileged=true --profiling=false \
    --endpoint-reconciler-type none \
    --max-requests-inflight 800 --max-mutating-requests-inflight 400
  wait_for kube-apiserver 120 api_healthy

  start kube-controller-manager \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --controllers '*' \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --leader-elect=false --profiling=false \
    --node-monitor-period 2s --node-monitor-grace-period 20s \
    --kube-api-qps 200 --kube-api-burst 400 \
    --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10
  start_scheduler
  start kwok \
    --kubeconfig "$state/kwok.kubeconfig" \
    --config "$root/hack/kwok/kwok.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 10.244.0.1 --cidr 10.244.0.0/16 \
    --server-address "127.0.0.1:$kwok_port"
  wait_for kube-controller-manager 60 secure_healthz "$kcm_port"
  wait_for kube-scheduler 60 secure_healthz "$sched_port"
  wait_for kwok 60 kwok_healthy
  # Pods can only be created once the namespace's default ServiceAccount exists.
  wait_for "default ServiceAccount" 60 default_sa_exists
  log "local cluster up in $((SECONDS - t0))s: export KUBECONFIG=$state/kubeconfig"
}

cmd_down() {
  local stopped=0 c pid
  # Reverse order: clients first, etcd last.
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    c="${components[$i]}"
    if pid="$(running_pid "$c")"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
    rm -f "$pids/$c.pid"
  done
  log "local cluster down ($stopped processes stopped)"
}

cmd_stop_one() { # component
  local c="${1:-}" pid
  [[ " ${components[*]} " == *" $c "* ]] || die "stop: unknown component ${c:-(none)}; one of ${components[*]}"
  if pid="$(running_pid "$c")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "$c stopped"
  fi
  rm -f "$pids/$c.pid"
}

cmd_status() {
  local c pid rc=0
  for c in "${components[@]}"; do
    if pid="$(running_pid "$c")"; then printf '%-24s running (pid %s)\n' "$c" "$pid"
    else printf '%-24s stopped\n' "$c"; rc=1; fi
  done
  if api_healthy; then printf '%-24s ready at https://127.0.0.1:%s\n' "api" "$api_port"
  else printf '%-24s not ready\n' "api"; rc=1; fi
  printf 'KUBECONFIG=%s\n' "$state/kubeconfig"
  return $rc
}

cmd_env() {
  printf 'export KUBECONFIG=%q\nexport BAMEL_BIN=%q\nexport PATH=%q:$PATH\n' "$state/kubeconfig" "$bin" "$bin"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  stop) cmd_stop_one "${2:-}" ;;
  *) echo "usage: $0 up|down|status|env|stop COMPONENT" >&2; exit 2 ;;
esac
