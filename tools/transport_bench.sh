#!/usr/bin/env bash
# Transport benchmark (issue 6): one `specsteer cloud serve` on loopback,
# edges from `specsteer cloud load` (each edge = one thread running whole
# generations over its own gRPC stream). Prints one JSON line per run.
#   tools/transport_bench.sh [BIN] [FIXTURES]
# Part 1: sessions/s and verified tokens/s under 1, 4 and 16 concurrent edges.
# Part 2: bytes/token, round trips/token and tokens/s per method at
#         --net-delay-ms 0, 10 and 50 (added round-trip time per exchange).
set -euo pipefail
BIN=${1:-build/specsteer}
FIX=${2:-$(dirname "$0")/../../shared/fixtures/golden}
LLM=$FIX/tiny-qwen3-f32/tiny-qwen3-f32.gguf
SLM=$FIX/tiny-qwen3-q8_0/tiny-qwen3-q8_0.gguf
N=${N:-32}
PORT_FILE=$(mktemp -u)
"$BIN" cloud serve --llm "$LLM" --slm "$SLM" --listen 127.0.0.1:0 --port-file "$PORT_FILE" \
  -t 1 --ctx 256 --max-sessions 64 2>/dev/null &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$PORT_FILE"' EXIT
while [ ! -s "$PORT_FILE" ]; do sleep 0.1; done
ADDR=127.0.0.1:$(cat "$PORT_FILE")
INPUT="Write a short review of the film you saw this weekend."
PRIV="Private notes: I loved the soundtrack and I always mention the director."
load() { "$BIN" cloud load --cloud "$ADDR" --llm "$LLM" --slm "$SLM" --input "$INPUT" \
  --private-context "$PRIV" -t 1 --temp 0.8 "$@"; }
for c in 1 4 16; do
  load --method specsteer -n "$N" --concurrency "$c" --sessions $((2 * c))
done
for d in 0 10 50; do
  for m in specsteer sd lightcosteer costeer; do
    n=$N; [ "$m" = costeer ] && n=8
    load --method "$m" -n "$n" --net-delay-ms "$d"
  done
done
