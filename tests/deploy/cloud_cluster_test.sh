#!/usr/bin/env bash
# The cloud tier as deployed: 3 replicas behind a real nginx (grpc_pass, the
# config in deploy/nginx), a real Prometheus scraping them, 24 edges at once
# (MiniLaMP records with their profiles; greedy and seeded sampling) with
# 100 ms of RTT each. A fault-free run, then the same run while one replica
# is SIGKILLed and another SIGTERMed (drained): every generation completes,
# none falls back, every output is token-identical to the fault-free run,
# resumptions show in /metrics, the drained replica answers NOT_SERVING,
# every scrape parses (promtool), and no log or metric holds x, profile text
# or the outputs.
#   cloud_cluster_test.sh SPECSTEER_BIN SOURCE_DIR
# Exit 77 (skipped) without nginx/promtool/prometheus unless
# SPECSTEER_REQUIRE_ALL=1 (tools/test.sh sets it and installs them).
set -euo pipefail
bin="$1"; src="$2"
need_all="${SPECSTEER_REQUIRE_ALL:-0}"
for tool in nginx promtool prometheus curl; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    echo "cloud_cluster_test: $tool is not installed (bash tools/deps.sh --test)"
    [ "$need_all" = 1 ] && exit 1 || exit 77
  fi
done
work="$(mktemp -d /tmp/specsteer-cluster-test.XXXXXX)"
cluster="$work/cluster"
fail() { echo "FAIL: $*"; exit 1; }
cleanup() {
  "$src/tools/cloud_cluster.sh" --stop "$cluster" >/dev/null 2>&1 || true
  pkill -P $$ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

M="$src/models/minilamp"
data="$src/data/minilamp/review.jsonl"
db="$work/profiles.db"
"$bin" profile import --db "$db" --task review --data "$data" >/dev/null

# 12 records, each as a greedy and a seeded-sampling edge.
python3 - "$data" "$work" <<'PY'
import json, sys
data, work = sys.argv[1:3]
recs = [json.loads(l) for l in open(data)][:12]
with open(f"{work}/edges.tsv", "w") as f:
    for i, r in enumerate(recs):
        for mode in ("greedy", "sampled"):
            f.write(f"{i}-{mode}\t{r['reviewerId']}\t{mode}\t{r['input']}\n")
with open(f"{work}/secrets.txt", "w") as f:  # what must never reach the cloud's logs/metrics
    for r in recs:
        f.write(r["input"][:40] + "\n")
        for e in r.get("profile", [])[:2]:
            t = e.get("reviewText") or e.get("text") or ""
            if len(t) > 30: f.write(t[:30] + "\n")
PY

"$src/tools/cloud_cluster.sh" -n 3 --port 0 --dir "$cluster" --detach --prometheus -- -t 1 --shutdown-grace 2 \
  > "$work/cluster.out" 2>&1 || { cat "$work/cluster.out"; fail "the cluster did not start"; }
# shellcheck disable=SC1091
. "$cluster/cluster.env"
read -r -a pids <<< "$REPLICA_PIDS"
read -r -a ports <<< "$REPLICA_PORTS"
read -r -a mports <<< "$METRICS_PORTS"
balancer="$BALANCER"
echo "cluster: nginx at $balancer, replicas ${ports[*]}"

for p in "${ports[@]}"; do
  [ "$("$bin" cloud health --cloud "127.0.0.1:$p")" = SERVING ] || fail "replica $p is not SERVING"
  [ "$("$bin" cloud health --cloud "127.0.0.1:$p" --service specsteer.v1.Cloud)" = SERVING ] ||
    fail "replica $p: specsteer.v1.Cloud is not SERVING"
done
[ "$("$bin" cloud health --cloud "$balancer")" = SERVING ] || fail "health through nginx"

run_edges() {  # OUT_DIR: 24 edges at once through the balancer
  local out="$1"; mkdir -p "$out"
  local jobs=()
  while IFS=$'\t' read -r name user mode x; do
    local sample=()
    [ "$mode" = sampled ] && sample=(--temp 0.8 --seed 11)
    "$bin" generate --slm "$M/specialist.gguf" --cloud "$balancer" --profile-db "$db" --user "$user" \
      --task review -p "$x" -n 64 -t 1 --json --net-delay-ms 100 "${sample[@]}" \
      > "$out/$name.json" 2> "$out/$name.err" &
    jobs+=("$!:$name")
  done < "$work/edges.tsv"
  local bad=0
  for j in "${jobs[@]}"; do
    wait "${j%%:*}" || { echo "edge ${j#*:} exited $?: $(cat "$out/${j#*:}.err")"; bad=1; }
  done
  return $bad
}

run_edges "$work/clean" || fail "the fault-free run failed"

# Every replica's scrape parses, and Prometheus scrapes all three.
for mp in "${mports[@]}"; do
  curl -sf "127.0.0.1:$mp/metrics" > "$work/scrape-$mp.txt" || fail "no /metrics on $mp"
  promtool check metrics < "$work/scrape-$mp.txt" || fail "promtool rejects the scrape of $mp"
  grep -q '^specsteer_sessions_opened_total' "$work/scrape-$mp.txt" || fail "no specsteer_* samples on $mp"
done
prom="127.0.0.1:$(cat "$cluster/prometheus.port")"
up=0
for _ in $(seq 1 100); do
  up=$(curl -sf "http://$prom/api/v1/query?query=sum(up)" | python3 -c \
    'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' || echo 0)
  [ "$up" = 3 ] && break
  sleep 0.2
done
[ "$up" = 3 ] || fail "Prometheus scrapes $up of 3 replicas"

# The same edges with faults: SIGKILL replica 0, then drain replica 1.
run_edges "$work/faulty" & edges=$!
sleep 1.2
kill -KILL "${pids[0]}"
sleep 0.5
kill -TERM "${pids[1]}"
health=$("$bin" cloud health --cloud "127.0.0.1:${ports[1]}" || true)
[ "$health" = NOT_SERVING ] || fail "a draining replica answers '$health', not NOT_SERVING"
wait "$edges" || fail "an edge failed while replicas were lost"

python3 - "$work" <<'PY' || exit 1
import json, os, sys
work = sys.argv[1]
names = sorted(f[:-5] for f in os.listdir(f"{work}/clean") if f.endswith(".json"))
assert len(names) == 24, names
resumed = 0
for n in names:
    a = json.load(open(f"{work}/clean/{n}.json")); b = json.load(open(f"{work}/faulty/{n}.json"))
    assert not a["fallback"] and not b["fallback"], f"{n}: fell back to the device"
    assert a["tokens"] == b["tokens"], f"{n}: output differs from the fault-free run"
    assert len(a["tokens"]) > 0, n
    resumed += b["resumed"]
assert resumed > 0, "no session was resumed: the faults came too late"
print(f"24 generations token-identical to the fault-free run; {resumed} sessions resumed")
PY

live="${mports[2]}"
curl -sf "127.0.0.1:$live/metrics" > "$work/scrape-after.txt"
promtool check metrics < "$work/scrape-after.txt" || fail "promtool rejects the scrape after the faults"
r=$(awk '/^specsteer_sessions_resumed_total/ {print $2}' "$work/scrape-after.txt")
python3 -c "import sys; sys.exit(0 if float('$r') > 0 else 1)" || fail "the live replica counts no resumed sessions"
echo "live replica: specsteer_sessions_resumed_total $r"

# Nothing of x, the profile or the outputs in what the operator keeps.
python3 - "$work" "$cluster" <<'PY' || exit 1
import glob, json, sys
work, cluster = sys.argv[1:3]
secrets = [l.rstrip("\n") for l in open(f"{work}/secrets.txt") if l.strip()]
for f in glob.glob(f"{work}/clean/*.json"):
    t = json.load(open(f))["text"]
    if len(t) > 30: secrets.append(t[:30])
kept = glob.glob(f"{cluster}/*.log") + glob.glob(f"{work}/scrape-*.txt")
for path in kept:
    body = open(path, errors="replace").read()
    for s in secrets:
        assert s not in body, f"{path} holds private or prompt text: {s!r}"
print(f"{len(kept)} logs and scrapes hold none of {len(secrets)} x/profile/output snippets")
PY
echo "PASS"
