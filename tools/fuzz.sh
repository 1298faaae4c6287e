#!/usr/bin/env bash
# Builds the GGUF reader's libFuzzer target with clang (ASan + UBSan) in its
# own build dir, writes a seed corpus with the project's writers, and fuzzes
# for FUZZ_SECONDS (default 60). Exits non-zero on any crash, sanitizer
# report, leak or hang (> 10 s per input); the reproducer is saved under
# $FUZZ_BUILD_DIR/fuzz/artifacts/ (replay: gguf_fuzz FILE).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 1; }
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECSTEER_FUZZ=ON -DSPECSTEER_BUILD_TESTS=OFF \
    -DSPECSTEER_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$build" --target gguf_fuzz gguf_fuzz_corpus -j "$jobs"

seeds=$build/fuzz/seeds
corpus=$build/fuzz/corpus
artifacts=$build/fuzz/artifacts
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$artifacts"
"$build/tests/fuzz/gguf_fuzz_corpus" "$seeds"

echo "fuzzing the GGUF reader for ${seconds}s (corpus: $corpus)"
"$build/tests/fuzz/gguf_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=131072 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$seeds"
echo "fuzz.sh: no crashes in ${seconds}s"
