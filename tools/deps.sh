#!/usr/bin/env bash
# Installs the Debian bookworm packages specsteer builds and tests with.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git
      libhwy-dev libgtest-dev libgmock-dev libbenchmark-dev
      libsqlite3-dev libpcre2-dev libssl-dev nlohmann-json3-dev libcli11-dev
      libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libcpp-httplib-dev
      python3 python3-numpy clang libclang-rt-14-dev)
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
