#!/usr/bin/env bash
# bench-freshness.sh: how fresh cached reads stay when the writes are made straight at the
# origin, not through Slipstream (issue 16). One run, three targets, reads through each while
# `slipstream bench freshness` writes at the origin:
#   serve-stream  slipstream serve, invalidation from logical replication, max_age 1h
#   edge-stream   slipstream edge + pool with a 50 ms RTT QUIC tunnel between them (a UDP relay),
#                 the pool reading the change stream, max_age 1h
#   serve-ttl     slipstream serve, invalidation = "ttl", max_age 60s (Hyperdrive's behaviour: the peer)
#
#   scripts/bench-freshness.sh [--json FILE]
#
# Then, unless HITRATIO=0, the hit ratio of pgbench's hot set (\set aid random(1, 1000);
# SELECT abalance FROM pgbench_accounts WHERE aid = :aid, 8 clients each, both at once for
# HITRATIO seconds) through serve-stream (max_age 1h) and serve-ttl (max_age 60s).
#
# Environment: WRITES=1000 CLIENTS=16 RTT=50ms HITRATIO=150 PG_BIN=/usr/lib/postgresql/15/bin
# A PostgreSQL 15 cluster (wal_level=logical, synchronous_commit on) and the Slipstream processes
# are started here on free loopback ports in one temp dir and removed on exit.
set -euo pipefail
json=()
case ${1:-} in
  --json) json=(--json "$(realpath -m -- "${2:?--json needs a file}")") ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
cd "$(dirname "$0")/.."
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WRITES=${WRITES:-1000}
CLIENTS=${CLIENTS:-16}
RTT=${RTT:-50ms}
HITRATIO=${HITRATIO:-150}

as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp() { python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

tmp=$(mktemp -d /tmp/slipstream-fresh.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp"
pids=()
pgb=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -f "$tmp/data/postmaster.pid" ] && as_server "$PG_BIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building slipstream..."
go build -o "$tmp/slipstream" ./cmd/slipstream
S=$tmp/slipstream

pg_port=$(free_port)
echo postgres-secret >"$tmp/pw"
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp/pw"
as_server "$PG_BIN/initdb" -D "$tmp/data" -U postgres --pwfile "$tmp/pw" --auth=scram-sha-256 >/dev/null
as_server "$PG_BIN/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$tmp -c wal_level=logical -c max_connections=200" start >/dev/null
origin="postgres://postgres:postgres-secret@127.0.0.1:$pg_port/postgres?sslmode=disable"
PGPASSWORD=postgres-secret "$PG_BIN/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE PUBLICATION slipstream FOR ALL TABLES" postgres

start_serve() { # name invalidation max_age
  local port http
  port=$(free_port); http=$(free_port)
  cat >"$tmp/$1.toml" <<TOML
[[database]]
name = "postgres"
origin = "$origin"
invalidation = "$2"
[database.caching]
max_age = "$3"
[database.stream]
slot = "bench_${1//-/_}"
TOML
  "$S" serve --config "$tmp/$1.toml" --pg-listen "127.0.0.1:$port" --mysql-listen 127.0.0.1:0 --http-listen "127.0.0.1:$http" --data-dir "$tmp/$1" >"$tmp/$1.out" 2>"$tmp/$1.err" &
  pids+=($!)
  eval "${1//-/_}_url=postgres://postgres:postgres-secret@127.0.0.1:$port/postgres?sslmode=disable"
}
start_serve serve-stream stream 1h
start_serve serve-ttl ttl 60s

# The split shape: pool next to the origin, the edge 50 ms away over QUIC.
"$S" certs --dir "$tmp/certs" >/dev/null
tun=$(free_udp); relay=$(free_udp); edge_port=$(free_port)
cat >"$tmp/split.toml" <<TOML
[[database]]
name = "postgres"
origin = "$origin"
[database.caching]
max_age = "1h"
[database.stream]
slot = "bench_split"
TOML
"$S" pool --config "$tmp/split.toml" --tunnel-listen "127.0.0.1:$tun" --certs "$tmp/certs" --http-listen 127.0.0.1:0 --data-dir "$tmp/pool" >"$tmp/pool.out" 2>"$tmp/pool.err" &
pids+=($!)
"$S" bench relay --udp --listen "127.0.0.1:$relay" --to "127.0.0.1:$tun" --rtt "$RTT" >/dev/null 2>&1 &
pids+=($!)
"$S" edge --config "$tmp/split.toml" --pool "main=127.0.0.1:$relay" --certs "$tmp/certs" --pg-listen "127.0.0.1:$edge_port" --http-listen 127.0.0.1:0 --data-dir "$tmp/edge" >"$tmp/edge.out" 2>"$tmp/edge.err" &
pids+=($!)
edge_url="postgres://postgres:postgres-secret@127.0.0.1:$edge_port/postgres?sslmode=disable"

for f in serve-stream serve-ttl edge; do
  for _ in $(seq 100); do grep -q '^metrics:' "$tmp/$f.out" 2>/dev/null && break; sleep 0.1; done
done
sleep 2 # the change streams connect and catch up
echo "freshness: $WRITES writes at the origin, $CLIENTS readers through each target (tunnel RTT $RTT)"
"$S" bench freshness --direct "$origin" --writes "$WRITES" --clients "$CLIENTS" "${json[@]}" \
  --via "serve-stream=$serve_stream_url" --via "edge-stream=$edge_url" --via "serve-ttl=$serve_ttl_url"

# What the streams report of it: the answers a cache served while its stream was behind by more
# than max_lag (must be 0; the pool's cache and serve's, an edge's reads are not counted there),
# and the lag in bytes and seconds at the end.
stream_metrics() { # target (its .out file)
  local http
  http=$(sed -n 's|^metrics: http://\(.*\)/metrics$|\1|p' "$tmp/$1.out")
  curl -s "http://$http/metrics" | awk -v n="$1" '
    /^slipstream_change_stream_(reads_behind_total|lag_bytes|lag_seconds|disconnects_total)\{/ { printf "%-14s %s\n", n, $0 }
    # Where the time goes: from each commit at the origin until the caches dropped what it
    # wrote (slipstream_invalidation_lag_seconds), and its stages (origin: until the walsender
    # sent it; receive: until the stream read it; apply: until every cache dropped it), as the
    # share of transactions within each bucket.
    /^slipstream_(invalidation_lag_seconds|change_stream_delay_seconds)_(bucket|count)\{/ {
      h = "all"; if (match($0, /stage="[^"]*"/)) h = substr($0, RSTART + 7, RLENGTH - 8)
      if ($0 ~ /_count\{/) { total[h] = $2; next }
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      if (le == "+Inf") next
      if (!(h in k)) order[++nh] = h
      les[h, ++k[h]] = le; cum[h, le] = $2
    }
    END {
      for (j = 1; j <= nh; j++) {
        h = order[j]; if (total[h] == 0) continue
        line = ""; for (i = 1; i <= k[h]; i++) line = line sprintf(" %s:%.1f%%", les[h, i], 100 * cum[h, les[h, i]] / total[h])
        printf "%-14s %-8s %5d tx, share within (s):%s\n", n, h, total[h], line
      }
    }'
}
stream_metrics serve-stream
stream_metrics pool

[ "$HITRATIO" -gt 0 ] || exit 0
metric() { # http-address status
  curl -s "http://$1/metrics" | awk -v s="$2" '$1 ~ /^slipstream_cache_queries_total/ && $1 ~ "status=\"" s "\"" { n += $2 } END { print n + 0 }'
}
PGPASSWORD=postgres-secret "$PG_BIN/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$pg_port" -U postgres postgres >/dev/null 2>&1
# pgbench -i is one large transaction: let the stream replay it and be current again first.
stream_http=$(sed -n 's|^metrics: http://\(.*\)/metrics$|\1|p' "$tmp/serve-stream.out")
# (Decoding its 100,000 rows may bring its commit more than max_lag late: the stream then
# reconnects and replays it with caching off.) Wait until it has been current for 5 s in a row.
current=0
for _ in $(seq 1200); do
  # grep reads it all: with pipefail, grep -q leaving early made curl's SIGPIPE read as "not current".
  if curl -s "http://$stream_http/metrics" | grep '^slipstream_change_stream_up{db="postgres"} 1' >/dev/null; then
    current=$((current + 1))
  else
    current=0
  fi
  [ "$current" -lt 50 ] || break
  sleep 0.1
done
printf '\\set aid random(1, 1000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' >"$tmp/hotset.sql"
echo "hit ratio: pgbench hot set (1,000 keys), 8 clients through each, ${HITRATIO}s"
for t in serve-stream serve-ttl; do
  http=$(sed -n 's|^metrics: http://\(.*\)/metrics$|\1|p' "$tmp/$t.out")
  eval "before_hit_${t//-/_}=$(metric "$http" hit) before_miss_${t//-/_}=$(metric "$http" miss) before_stale_${t//-/_}=$(metric "$http" stale)"
  url_var="${t//-/_}_url"
  "$PG_BIN/pgbench" -n -M simple -c 8 -j 1 -T "$HITRATIO" -f "$tmp/hotset.sql" "${!url_var}" >"$tmp/$t.pgbench" 2>&1 &
  pgb+=($!)
done
wait "${pgb[@]}"
printf '%-14s %10s %10s %10s %8s\n' target hits stale misses "hit %"
for t in serve-stream serve-ttl; do
  http=$(sed -n 's|^metrics: http://\(.*\)/metrics$|\1|p' "$tmp/$t.out")
  v=${t//-/_}; bh=before_hit_$v; bm=before_miss_$v; bs=before_stale_$v
  h=$(( $(metric "$http" hit) - ${!bh} )); m=$(( $(metric "$http" miss) - ${!bm} )); st=$(( $(metric "$http" stale) - ${!bs} ))
  printf '%-14s %10d %10d %10d %8s\n' "$t" "$h" "$st" "$m" "$(awk -v h="$h" -v s="$st" -v m="$m" 'BEGIN { printf "%.3f", 100 * h / (h + s + m) }')"
done
# A stream that was lost or fell behind during the hot set shows here (its reads went to the origin).
http=$(sed -n 's|^metrics: http://\(.*\)/metrics$|\1|p' "$tmp/serve-stream.out")
curl -s "http://$http/metrics" | awk '/^slipstream_change_stream_(disconnects_total|up)\{/ { printf "%-14s %s\n", "serve-stream", $0 }'
grep -h 'change stream' "$tmp/serve-stream.err" | tail -5 || true
