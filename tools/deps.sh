#!/usr/bin/env bash
# Installs the Debian bookworm packages specsteer builds with; with --test
# also what only the tests use (nginx, Prometheus, curl, PyYAML: the cloud
# tier's cluster test and the deployment files' checks).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git
      libhwy-dev libgtest-dev libgmock-dev libbenchmark-dev
      libsqlite3-dev libpcre2-dev libssl-dev nlohmann-json3-dev libcli11-dev
      libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libcpp-httplib-dev prometheus-cpp-dev
      python3 python3-numpy clang libclang-rt-14-dev)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(nginx prometheus curl python3-yaml)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The pinned openai npm client for tests/serve (optional: without node/npm or
# the registry its test skips with a message).
client="$(cd "$(dirname "$0")/.." && pwd)/tests/serve/openai_client"
if command -v npm >/dev/null 2>&1 && [ ! -f "$client/node_modules/openai/package.json" ]; then
  (cd "$client" && timeout 300 npm ci --no-audit --no-fund --silent) ||
    echo "deps.sh: could not install the openai npm client; its test will skip" >&2
fi
