#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, only when one is
# missing (so a warm run does not touch apt at all).
set -euo pipefail
packages=(openssl curl ca-certificates procps iproute2 ipmitool openipmi)
# eBPF agent: clang (-target bpf), bpftool (vmlinux.h, tests), libbpf-dev (the addon),
# libelf-dev and zlib1g-dev (libbpf's link deps), iperf3 (bench/traffic.bench.ts), g++ and
# python3 (node-gyp builds the addon).
packages+=(clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev iperf3 g++ python3)
# The image (hack/image.sh): mmdebstrap (the Debian base), buildah (assembles it without a
# Docker engine), skopeo (reads and pushes it), python3-pip (downloads the Node.js wheel).
# The real node (hack/node.sh): containerd, runc, the CNI plugins (bridge, host-local), and
# socat (the API server reached from pods at the bridge address).
packages+=(mmdebstrap buildah skopeo python3-pip containerd runc containernetworking-plugins socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "go is missing: the local control plane is built from Go modules" >&2; exit 1; }
command -v node >/dev/null || { echo "node is missing (Node.js >= 20)" >&2; exit 1; }
