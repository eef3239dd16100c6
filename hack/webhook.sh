#!/usr/bin/env bash
# The admission webhook on the local control plane (config/webhook, served by `bamel manager
# --webhook-cert-dir DIR --webhook-bind-address 127.0.0.1:PORT`).
#
#   hack/webhook.sh certs        a CA and a serving certificate for 127.0.0.1 in DIR (kept when present)
#   hack/webhook.sh rotate       a new serving certificate from the same CA (the manager reloads it)
#   hack/webhook.sh register     apply config/webhook with clientConfig.url https://127.0.0.1:PORT/... and the CA
#   hack/webhook.sh unregister   delete that ValidatingWebhookConfiguration
#   hack/webhook.sh env          print the settings
#
# BAMEL_WEBHOOK_DIR       certificates (default $BAMEL_LOCAL/webhook)
# BAMEL_WEBHOOK_PORT      the manager's webhook port (default 19443)
# BAMEL_WEBHOOK_NAME      the configuration's name (default bamel-local-webhook)
# BAMEL_WEBHOOK_SELECTOR  key=value: only objects with this label are sent (none by default)
#
# The configuration has failurePolicy Fail: while it is registered, BareMetalAutoscalers and
# labelled ConfigMaps cannot be written unless the manager answers. Unregister when done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="${BAMEL_LOCAL:-$root/.local}"
bin="${BAMEL_CACHE:-$HOME/.cache/bamel}/bin"
dir="${BAMEL_WEBHOOK_DIR:-$state/webhook}"
port="${BAMEL_WEBHOOK_PORT:-19443}"
name="${BAMEL_WEBHOOK_NAME:-bamel-local-webhook}"
selector="${BAMEL_WEBHOOK_SELECTOR:-}"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
kctl() { "$bin/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

# EC P-256: generated in milliseconds, accepted by the API server's webhook client.
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

serving_cert() {
  local tmp
  tmp="$(mktemp -d "$dir/.new-XXXXXX")"
  openssl req "${newkey[@]}" -keyout "$tmp/tls.key" -out "$tmp/tls.csr" -subj "/CN=bamel-webhook" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:bamel-webhook-service.bamel-system.svc\nextendedKeyUsage=serverAuth\n' > "$tmp/ext"
  openssl x509 -req -in "$tmp/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -CAserial "$dir/ca.srl" \
    -out "$tmp/tls.crt" -days 365 -extfile "$tmp/ext" >/dev/null 2>&1
  # Key first, then certificate, each by rename: the manager never reads a truncated file,
  # and takes the pair only once the two match.
  mv "$tmp/tls.key" "$dir/tls.key"
  mv "$tmp/tls.crt" "$dir/tls.crt"
  rm -rf "$tmp"
}

cmd_certs() {
  command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [[ ! -f "$dir/ca.crt" || ! -f "$dir/ca.key" ]]; then
    log "generating the webhook CA in $dir"
    (umask 077; openssl req -x509 "${newkey[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 -subj "/CN=bamel-webhook-local-ca" >/dev/null 2>&1)
  fi
  if [[ ! -f "$dir/tls.crt" || ! -f "$dir/tls.key" ]]; then
    log "generating the serving certificate for 127.0.0.1"
    serving_cert
  fi
  echo "$dir"
}

cmd_rotate() {
  [[ -f "$dir/ca.key" ]] || die "no CA in $dir: run hack/webhook.sh certs first"
  serving_cert
  log "new serving certificate in $dir"
}

render() {
  local args=(--url "https://127.0.0.1:$port" --ca-file "$dir/ca.crt" --name "$name")
  [[ -n "$selector" ]] && args+=(--selector "$selector")
  if [[ -f "$root/dist/hack/webhook-config.js" ]]; then
    node "$root/dist/hack/webhook-config.js" "${args[@]}"
  else
    (cd "$root" && TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs hack/webhook-config.ts "${args[@]}")
  fi
}

cmd_register() {
  cmd_certs >/dev/null
  render | kctl apply -f - >&2
  log "registered $name: https://127.0.0.1:$port (failurePolicy Fail: run hack/webhook.sh unregister when done)"
}

cmd_unregister() {
  kctl delete validatingwebhookconfiguration "$name" --ignore-not-found >&2
}

case "${1:-}" in
  certs) cmd_certs ;;
  rotate) cmd_rotate ;;
  register) cmd_register ;;
  unregister) cmd_unregister ;;
  render) render ;;
  env) printf 'BAMEL_WEBHOOK_DIR=%s\nBAMEL_WEBHOOK_PORT=%s\nBAMEL_WEBHOOK_NAME=%s\nBAMEL_WEBHOOK_SELECTOR=%s\n' "$dir" "$port" "$name" "$selector" ;;
  *) echo "usage: $0 certs|rotate|register|unregister|render|env" >&2; exit 2 ;;
esac
