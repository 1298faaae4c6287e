#!/usr/bin/env bash
# Installs dependencies and builds specsteer (Release) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build --target specsteer_cli -j"$(nproc)" >> build.log 2>&1 || { tail -50 build.log; exit 1; }
echo "built build/specsteer"
