#!/usr/bin/env bash
# The whole test suite: a Release build with every test, then an
# ASan+UBSan build running the unit tests again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh --test
jobs="$(nproc)"
# Tests that need test-only tools (nginx, Prometheus) fail instead of skipping.
export SPECSTEER_REQUIRE_ALL=1

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPECSTEER_BUILD_BENCH=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECSTEER_SANITIZE=ON -DSPECSTEER_BUILD_BENCH=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900 -LE slow

# A bounded libFuzzer run of the GGUF reader (clang, ASan+UBSan).
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash tools/fuzz.sh
