#!/usr/bin/env bash
# Installs the Debian bookworm packages specsteer builds with; with --test
# also what only the tests use: nginx, Prometheus, curl and PyYAML (the cloud
# tier's cluster test, the deployment files' checks), venv/setuptools/pytest
# (the Python package), rsvg-convert (plots as PNG), chromium and the pinned
# npm packages (the chat page in a real browser, the official openai client).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git
      libhwy-dev libgtest-dev libgmock-dev libbenchmark-dev
      libsqlite3-dev libpcre2-dev libssl-dev nlohmann-json3-dev libcli11-dev
      libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libcpp-httplib-dev prometheus-cpp-dev
      python3 python3-numpy clang libclang-rt-14-dev)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(nginx prometheus curl python3-yaml python3-venv python3-setuptools python3-pytest librsvg2-bin chromium)
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

# The pinned npm packages of tests/serve: the openai client, and
# puppeteer-core driving Debian's chromium (optional: without node/npm or the
# registry their tests skip with a message).
[ "${1:-}" = "--test" ] || exit 0
root="$(cd "$(dirname "$0")/.." && pwd)"
for pkg in openai_client/node_modules/openai browser/node_modules/puppeteer-core; do
  dir="$root/tests/serve/${pkg%%/node_modules/*}"
  if command -v npm >/dev/null 2>&1 && [ ! -f "$root/tests/serve/$pkg/package.json" ]; then
    (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --silent) ||
      echo "deps.sh: could not install the npm packages of $dir; its test will skip" >&2
  fi
done
