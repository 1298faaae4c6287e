#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds the C example
# against it twice, through pkg-config and through the CMake package, and
# runs both with the bundled MiniLaMP models (the cloud in process).
set -euo pipefail
build=$1 src=$2 sanitize_flags=${3:-}  # a sanitizer build's library needs the example built the same way
slm=$src/models/minilamp/specialist.gguf llm=$src/models/minilamp/generalist.gguf
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc_dir=$(dirname "$(find "$prefix" -name specsteer.pc | head -1)")
flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs specsteer)
libdir=$(PKG_CONFIG_PATH=$pc_dir pkg-config --variable=libdir specsteer)
cc -std=c11 -Wall -Wextra -Werror $sanitize_flags "$src/examples/edge_example.c" $flags -o "$prefix/edge_example_pc"
# A profile store with one user whose SLM+ also has a LoRA adapter (`profile lora`).
head -n 2 "$src/data/minilamp/review.jsonl" > "$prefix/records.jsonl"
"$build/specsteer" profile import --db "$prefix/profile.db" --task review --data "$prefix/records.jsonl" >/dev/null
user=$(head -n 1 "$prefix/records.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reviewerId"])')
"$build/specsteer" gguf synth-lora -m "$slm" -o "$prefix/user.lora.gguf" --rank 4 >/dev/null
"$build/specsteer" profile lora --db "$prefix/profile.db" --user "$user" --set "$prefix/user.lora.gguf:0.5" >/dev/null
LD_LIBRARY_PATH=$libdir "$prefix/edge_example_pc" "$slm" "$llm" "$prefix/profile.db" "$user" review
cmake -S "$src/examples" -B "$prefix/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$sanitize_flags" >/dev/null
cmake --build "$prefix/cmake-build" >/dev/null
LD_LIBRARY_PATH=$libdir "$prefix/cmake-build/edge_example" "$slm" "$llm"
# Only the C API is exported.
if nm -D --defined-only "$libdir/libspecsteer.so" | awk '{print $3}' | grep -v '^specsteer_' | grep -q 'specsteer'; then
  echo "libspecsteer.so exports C++ symbols of specsteer" >&2
  exit 1
fi
