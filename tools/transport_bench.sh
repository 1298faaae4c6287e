#!/usr/bin/env bash
# Transport benchmark (issue 6): one `specsteer cloud serve` on loopback,
# edges from `specsteer cloud load` (each edge = one thread running whole
# generations over its own gRPC stream). Prints one JSON line per run.
#   [LLM=.. SLM=.. N=32 THREADS=1 PARTS=12] tools/transport_bench.sh [BIN] [FIXTURES]
# Part 1: sessions/s and verified tokens/s under 1, 4 and 16 concurrent edges,
#         with cross-session batching on and off (two servers, one after the other).
# Part 2: bytes/token, round trips/token and tokens/s per method at
#         --net-delay-ms 0, 10 and 50 (added round-trip time per exchange).
set -euo pipefail
BIN=${1:-build/specsteer}
FIX=${2:-$(dirname "$0")/../../shared/fixtures/golden}
LLM=${LLM:-$FIX/tiny-qwen3-f32/tiny-qwen3-f32.gguf}
SLM=${SLM:-$FIX/tiny-qwen3-q8_0/tiny-qwen3-q8_0.gguf}
N=${N:-32}
THREADS=${THREADS:-1}
PARTS=${PARTS:-12}
PORT_FILE=$(mktemp -u)
SERVER=
stop_server() {
  if [ -n "$SERVER" ]; then
    kill -TERM "$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null || true
    grep -o 'stopped: .*' "$PORT_FILE.log" >&2 || true  # incl. evals per shared forward pass
  fi
  SERVER=
  rm -f "$PORT_FILE" "$PORT_FILE.log"
}
trap stop_server EXIT
start_server() {  # extra serve flags; sets ADDR
  stop_server
  "$BIN" cloud serve --llm "$LLM" --slm "$SLM" --listen 127.0.0.1:0 --port-file "$PORT_FILE" \
    -t "$THREADS" --ctx 256 --max-sessions 64 "$@" 2>"$PORT_FILE.log" &
  SERVER=$!
  while [ ! -s "$PORT_FILE" ]; do
    if ! kill -0 "$SERVER" 2>/dev/null; then cat "$PORT_FILE.log" >&2; SERVER=; exit 1; fi
    sleep 0.1
  done
  ADDR=127.0.0.1:$(cat "$PORT_FILE")
}
INPUT="Write a short review of the film you saw this weekend."
PRIV="Private notes: I loved the soundtrack and I always mention the director."
load() { "$BIN" cloud load --cloud "$ADDR" --llm "$LLM" --slm "$SLM" --input "$INPUT" \
  --private-context "$PRIV" -t 1 --temp 0.8 "$@"; }
if [[ $PARTS == *1* ]]; then
  for batching in on off; do
    flags=(); [ "$batching" = off ] && flags=(--no-batching)
    start_server "${flags[@]}"
    load --method specsteer -n 4 >/dev/null  # warm-up: page in the weights
    for c in 1 4 16; do
      echo -n "{\"batching\":\"$batching\"} "
      load --method specsteer -n "$N" --concurrency "$c" --sessions $((2 * c))
    done
    stop_server
  done
fi
if [[ $PARTS == *2* ]]; then
  start_server
  for d in 0 10 50; do
    for m in specsteer sd lightcosteer costeer; do
      n=$N; [ "$m" = costeer ] && n=8
      load --method "$m" -n "$n" --net-delay-ms "$d"
    done
  done
fi
