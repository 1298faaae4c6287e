#!/usr/bin/env bash
# The cloud tier on this machine: N `specsteer cloud serve` replicas behind
# nginx (grpc_pass), each with its Prometheus /metrics, optionally a
# Prometheus server scraping them. Edges use the balancer's address:
#   build/specsteer generate --slm S --cloud 127.0.0.1:PORT ...
#
#   tools/cloud_cluster.sh [-n 3] [--port 7070 (0: any free port)] [--llm F] [--slm F] [--dir D]
#                          [--tls-cert C --tls-key K] [--prometheus]
#                          [--detach] [-- extra `cloud serve` options]
#   tools/cloud_cluster.sh --stop D
#
# In the foreground it runs until Ctrl-C, then drains the replicas (SIGTERM)
# and stops nginx. --detach returns once everything answers and writes
# D/cluster.env (ports and pids; `--stop D` ends it). Replica i listens on
# 127.0.0.1 at D/replica-i.port, its metrics at D/replica-i.metrics-port.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n=3 port=7070 dir="" detach=0 prom=0 tls_cert="" tls_key="" stop=""
llm="$root/models/minilamp/generalist.gguf" slm="$root/models/minilamp/specialist.gguf"
bin="${SPECSTEER_BIN:-$root/build/specsteer}"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --llm) llm="$2"; shift 2 ;;
    --slm) slm="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --tls-cert) tls_cert="$2"; shift 2 ;;
    --tls-key) tls_key="$2"; shift 2 ;;
    --prometheus) prom=1; shift ;;
    --detach) detach=1; shift ;;
    --stop) stop="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "cloud_cluster.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
  esac
done

stop_cluster() {  # DIR
  local d="$1"
  [ -f "$d/cluster.env" ] || { echo "cloud_cluster.sh: no cluster in '$d'" >&2; return 1; }
  # shellcheck disable=SC1091
  . "$d/cluster.env"
  [ -n "${PROMETHEUS_PID:-}" ] && kill "$PROMETHEUS_PID" 2>/dev/null || true
  for p in $REPLICA_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
  [ -f "$d/nginx.pid" ] && kill -QUIT "$(cat "$d/nginx.pid")" 2>/dev/null || true
  for p in $REPLICA_PIDS; do
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -f "$d/cluster.env"
}
if [ -n "$stop" ]; then stop_cluster "$stop"; exit $?; fi

[ "$n" -ge 1 ] 2>/dev/null || { echo "cloud_cluster.sh: -n must be >= 1" >&2; exit 2; }
[ -x "$bin" ] || { echo "cloud_cluster.sh: $bin not built (bash tools/setup.sh)" >&2; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
  echo "cloud_cluster.sh: nginx is not installed (bash tools/deps.sh --test installs Debian's nginx)" >&2; exit 1; }
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
if [ -n "$tls_cert$tls_key" ] && { [ -z "$tls_cert" ] || [ -z "$tls_key" ]; }; then
  echo "cloud_cluster.sh: TLS needs both --tls-cert and --tls-key" >&2; exit 2
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
[ "$port" = 0 ] && port="$(free_port)"
[ -n "$dir" ] || dir="$(mktemp -d /tmp/specsteer-cluster.XXXXXX)"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

pids=()
cleanup() { [ -f "$dir/cluster.env" ] && stop_cluster "$dir"; }
for i in $(seq 1 "$n"); do
  rm -f "$dir/replica-$i.port" "$dir/replica-$i.metrics-port"
  "$bin" cloud serve --llm "$llm" --slm "$slm" --listen 127.0.0.1:0 --port-file "$dir/replica-$i.port" \
    --metrics-listen 127.0.0.1:0 --metrics-port-file "$dir/replica-$i.metrics-port" "${extra[@]}" \
    > "$dir/replica-$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$n"); do
  for _ in $(seq 1 600); do [ -s "$dir/replica-$i.port" ] && break; sleep 0.1
    kill -0 "${pids[$((i-1))]}" 2>/dev/null || { echo "cloud_cluster.sh: replica $i exited:" >&2; cat "$dir/replica-$i.log" >&2; exit 1; }
  done
  [ -s "$dir/replica-$i.port" ] || { echo "cloud_cluster.sh: replica $i did not start" >&2; exit 1; }
done

servers="" targets=""
for i in $(seq 1 "$n"); do
  servers+="    server 127.0.0.1:$(cat "$dir/replica-$i.port") max_fails=1 fail_timeout=5s;"$'\n'
  targets+="${targets:+, }'127.0.0.1:$(cat "$dir/replica-$i.metrics-port")'"
done
if [ -n "$tls_cert" ]; then
  listen="    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $(realpath "$tls_cert");
    ssl_certificate_key $(realpath "$tls_key");"
else
  listen="    listen 127.0.0.1:$port http2;"
fi
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
mkdir -p "$dir/nginx-body"
SERVERS="$servers" LISTEN="$listen" python3 - "$root/deploy/nginx/specsteer-cloud.conf.in" "$dir/nginx.conf" "$dir" "$user_line" <<'PY'
import os, sys
src, dst, d, user = sys.argv[1:5]
t = open(src).read()
t = t.replace("@USER_LINE@", user).replace("@DIR@", d)
t = t.replace("@SERVERS@", os.environ["SERVERS"].rstrip("\n")).replace("@LISTEN@", os.environ["LISTEN"])
open(dst, "w").write(t)
PY
"$nginx_bin" -t -p "$dir" -c "$dir/nginx.conf" 2> "$dir/nginx-test.log" || { cat "$dir/nginx-test.log" >&2; exit 1; }
"$nginx_bin" -p "$dir" -c "$dir/nginx.conf"   # daemonizes; pid in $dir/nginx.pid
for _ in $(seq 1 50); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done

prom_pid=""
if [ "$prom" -eq 1 ]; then
  command -v prometheus >/dev/null || { echo "cloud_cluster.sh: --prometheus needs Debian's prometheus" >&2; exit 1; }
  sed -e "s|@TARGETS@|$targets|" -e "s|@INTERVAL@|1s|" "$root/deploy/prometheus/prometheus.yml.in" > "$dir/prometheus.yml"
  prom_port="$(free_port)"
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus-data" \
    --web.listen-address="127.0.0.1:$prom_port" > "$dir/prometheus.log" 2>&1 &
  prom_pid=$!
  echo "$prom_port" > "$dir/prometheus.port"
fi

{
  echo "BALANCER=127.0.0.1:$port"
  echo "REPLICA_PIDS=\"${pids[*]}\""
  echo "REPLICA_PORTS=\"$(for i in $(seq 1 "$n"); do printf '%s ' "$(cat "$dir/replica-$i.port")"; done)\""
  echo "METRICS_PORTS=\"$(for i in $(seq 1 "$n"); do printf '%s ' "$(cat "$dir/replica-$i.metrics-port")"; done)\""
  echo "PROMETHEUS_PID=$prom_pid"
} > "$dir/cluster.env"

echo "cloud tier: $n replicas behind nginx at 127.0.0.1:$port ($dir)"
for i in $(seq 1 "$n"); do
  echo "  replica $i: 127.0.0.1:$(cat "$dir/replica-$i.port"), metrics http://127.0.0.1:$(cat "$dir/replica-$i.metrics-port")/metrics"
done
[ -n "$prom_pid" ] && echo "  prometheus: http://127.0.0.1:$(cat "$dir/prometheus.port")"
echo "  edges: $bin generate --slm $slm --cloud 127.0.0.1:$port ..."
if [ "$detach" -eq 1 ]; then echo "  stop: $0 --stop $dir"; exit 0; fi
trap 'cleanup; exit 0' INT TERM
echo "  Ctrl-C drains the replicas and stops"
wait "${pids[@]}"
