#!/usr/bin/env bash
# The cloud tier's costs on this machine (issue 24), MiniLaMP pair, edges
# from `specsteer cloud load` (one thread per edge, greedy, -t 1).
#   [N=64 REPS=3] tools/cluster_bench.sh [BIN]
# Part 1, the balancer's added time per exchange: one replica reached
#   directly and through nginx (tools/cloud_cluster.sh -n 1), one edge,
#   interleaved direct, nginx, direct, nginx, ...; per exchange = wall /
#   (round trips + open + close) over 48 sessions.
# Part 2, sessions/s and verified tokens/s through nginx in front of 1 and
#   of 3 replicas (each -t 1), 12 concurrent edges, 36 sessions,
#   interleaved 1, 3, 1, 3, ...
# Prints one JSON line per run; run it with the machine to itself.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${1:-$root/build/specsteer}
N=${N:-64}
REPS=${REPS:-3}
M="$root/models/minilamp"
rec=$(head -1 "$root/data/minilamp/review.jsonl")
X=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["input"])' "$rec")
PRIV=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["profile"][0]["reviewText"])' "$rec")
work=$(mktemp -d /tmp/specsteer-cluster-bench.XXXXXX)
trap '"$root/tools/cloud_cluster.sh" --stop "$work/c1" >/dev/null 2>&1 || true
      "$root/tools/cloud_cluster.sh" --stop "$work/c3" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
load() {  # ADDR CONCURRENCY SESSIONS
  "$BIN" cloud load --cloud "$1" --llm "$M/generalist.gguf" --slm "$M/specialist.gguf" --input "$X" \
    --private-context "$PRIV" -n "$N" -t 1 --concurrency "$2" --sessions "$3"
}
SPECSTEER_BIN="$BIN" "$root/tools/cloud_cluster.sh" -n 1 --port 0 --dir "$work/c1" --detach -- -t 1 >/dev/null
SPECSTEER_BIN="$BIN" "$root/tools/cloud_cluster.sh" -n 3 --port 0 --dir "$work/c3" --detach -- -t 1 >/dev/null
# shellcheck disable=SC1091
direct="127.0.0.1:$(. "$work/c1/cluster.env"; echo "${REPLICA_PORTS%% *}")"
nginx1=$(. "$work/c1/cluster.env"; echo "$BALANCER")
nginx3=$(. "$work/c3/cluster.env"; echo "$BALANCER")
load "$direct" 1 2 >/dev/null; load "$nginx1" 1 2 >/dev/null; load "$nginx3" 3 6 >/dev/null  # warm-up
per_exchange() {  # JSON of cloud load -> µs per exchange
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); s=j["sessions"]; g=j["generated_tokens"]
ex=j["round_trips_per_token"]*g + 2*s; print(json.dumps({"us_per_exchange": round(1e6*j["wall_s"]/ex, 1), "exchanges": round(ex), "wall_s": j["wall_s"]}))' "$1"
}
for r in $(seq 1 "$REPS"); do
  for path in direct nginx; do
    addr=$direct; [ "$path" = nginx ] && addr=$nginx1
    echo "{\"part\":1,\"rep\":$r,\"path\":\"$path\"} $(per_exchange "$(load "$addr" 1 48)")"
  done
done
for r in $(seq 1 "$REPS"); do
  for n in 1 3; do
    addr=$nginx1; [ "$n" = 3 ] && addr=$nginx3
    echo "{\"part\":2,\"rep\":$r,\"replicas\":$n} $(load "$addr" 12 36)"
  done
done
