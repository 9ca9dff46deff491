#!/usr/bin/env bash
# bench-pgbench.sh: pgbench read throughput through up to five targets in one run: PostgreSQL
# directly, PgBouncer (transaction mode), pgpool-II with its in-memory query cache, HAProxy in
# TCP mode (it forwards bytes and parses nothing: the floor of what a process in the path
# costs) when installed, and Slipstream (`slipstream serve`, its result cache on).
#
# Workloads (16 clients each):
#   simple, prepared, extended
#                     pgbench -S -M simple|prepared|extended: random point selects over the whole
#                     table, against direct, PgBouncer, HAProxy and Slipstream (transaction pooling)
#   hotset            \set aid random(1, 1000); SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
#                     against direct, pgpool-II (memory cache) and Slipstream (the result cache)
#   idle              not a throughput: IDLE_CLIENTS sessions that log in and then only sleep,
#                     against PgBouncer and Slipstream; reports the growth of each proxy's resident
#                     memory per idle session (VmRSS, sampled after IDLE_HOLD/2 seconds; the first
#                     round's, as later ones reuse what it grew). Not in the default MODES;
#                     skipped with many, which measures the same with MANY_IDLE sessions. Not
#                     through HAProxy: each of its clients is a PostgreSQL backend.
#   many              issue 17's 10,000 clients: MANY_IDLE sessions log in and stay idle, then,
#                     while they are held, pgbench -S -c MANY_ACTIVE -t MANY_TXNS runs through
#                     MANY_POOL origin connections (PgBouncer: a database with pool_size
#                     MANY_POOL; Slipstream: its default 20), against PgBouncer and Slipstream;
#                     reports tps, p50/p99 latency (pgbench's per-transaction log), failed
#                     transactions, the proxy's CPU per transaction and its resident memory per
#                     idle session. A comparison, not a test: nothing is asserted. Once, in the
#                     first round, before the other modes. Not in the default MODES (it needs ulimit -Hn >= MANY_IDLE +
#                     MANY_ACTIVE + 1000, and minutes: 11,000 SCRAM logins per proxy).
#
# For each proxy (PgBouncer, pgpool-II, Slipstream) and throughput run the script also reports
# the proxy's CPU microseconds per transaction (user + system time of the process and its
# children from /proc/PID/stat, over the run, divided by pgbench's transaction count) and,
# when strace is installed (SYSCALLS=0 turns it off), the proxy's system calls per
# transaction from `strace -c -f` attached during a separate SYSCALL_DURATION-second run of
# the same workload (strace slows the proxy down, so it is never attached to the timed runs).
#
#   scripts/bench-pgbench.sh [--json FILE]
#
# Environment:
#   DURATION=20        seconds per pgbench run
#   ROUNDS=2           interleaved rounds; each cell reports the best round
#   SCALE=10           pgbench -i scale factor
#   SKIP_SLIPSTREAM=1  leave Slipstream out (no build)
#   AB_REV=<git revision>  an A/B run: Slipstream built at that revision as a fifth target
#                      (slip-ab), run in the same rounds as the working tree's; the report adds
#                      slipstream / slip-ab per workload, throughput and CPU per transaction
#   MODES="simple prepared extended hotset"   (add idle for the memory of idle sessions)
#   SYSCALLS=1  SYSCALL_DURATION=5
#   IDLE_CLIENTS=1000  IDLE_HOLD=20
#   MANY_IDLE=10000  MANY_ACTIVE=1000  MANY_POOL=20  MANY_TXNS=20  MANY_LOGIN_TIMEOUT=600
#   SKIP_HAPROXY=1     leave HAProxy out even when installed
#   PROFILE_DURATION=10  seconds of an untimed pgbench -S -M simple run through Slipstream while
#                      its /debug/pprof/profile is taken; the report prints `go tool pprof -top`
#                      of it, flat and -cum (0 skips it); PROFILE_OUT=FILE keeps the profile
#   PG_BIN=/usr/lib/postgresql/15/bin   PGBOUNCER=/usr/sbin/pgbouncer   PGPOOL=/usr/sbin/pgpool
#
# Everything (a PostgreSQL 15 cluster, PgBouncer, Slipstream) is started here on free loopback
# ports inside one temp dir and removed on exit. Run as root (servers run as user postgres via
# runuser) or as a normal user (servers run as that user). Installs nothing: ./scripts/test.sh does.
set -euo pipefail

json_out=
while [ $# -gt 0 ]; do
  case $1 in
    --json) json_out=$(realpath -m -- "${2:?--json needs a file}"); shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-pgbench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-2}
SCALE=${SCALE:-10}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool}
MODES=${MODES:-simple prepared extended hotset}
SYSCALLS=${SYSCALLS:-1}
SYSCALL_DURATION=${SYSCALL_DURATION:-5}
command -v strace >/dev/null || SYSCALLS=0
CLIENTS=16
IDLE_CLIENTS=${IDLE_CLIENTS:-1000}
IDLE_HOLD=${IDLE_HOLD:-20}
MANY_IDLE=${MANY_IDLE:-10000}
MANY_ACTIVE=${MANY_ACTIVE:-1000}
MANY_POOL=${MANY_POOL:-20}
MANY_TXNS=${MANY_TXNS:-20}
MANY_LOGIN_TIMEOUT=${MANY_LOGIN_TIMEOUT:-600}
PROFILE_DURATION=${PROFILE_DURATION:-10}
[ -z "${PROFILE_OUT:-}" ] || PROFILE_OUT=$(realpath -m -- "$PROFILE_OUT")
THREADS=2
APP_PASSWORD=app-secret

for bin in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/pgbench" "$PG_BIN/psql" "$PG_BIN/pg_isready" "$PGBOUNCER"; do
  [ -x "$bin" ] || { echo "bench-pgbench.sh: missing $bin (./scripts/test.sh installs it)" >&2; exit 1; }
done

# Thousands of clients need as many descriptors in pgbench and in the proxies started here.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# many runs first: its memory per idle session is only the growth it causes when no earlier
# mode has grown (and left) the proxy's heap.
if [[ " $MODES " == *" many "* ]]; then MODES="many $(echo " $MODES " | sed 's/ many / /g')"; fi
if [[ " $MODES " == *" many "* ]] && [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((MANY_IDLE + MANY_ACTIVE + 1000)) ]; then
  echo "bench-pgbench.sh: mode many needs an open file limit of $((MANY_IDLE + MANY_ACTIVE + 1000)), the hard limit is $(ulimit -Hn) (lower MANY_IDLE)" >&2
  exit 1
fi

# as_server runs a server binary as postgres when we are root: PostgreSQL and PgBouncer refuse root.
# runuser's PAM session sets the soft open-file limit back (to 1024 here), so it is raised again
# to the hard one: PgBouncer holding 10,000 clients needs it.
as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- sh -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"' sh "$@"
  else
    "$@"
  fi
}

tmp=$(mktemp -d /tmp/slipstream-bench.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp"
slip_pid= haproxy_pid=

cleanup() {
  set +e
  for pid in $slip_pid ${ab_pid:-} $haproxy_pid ${idle_bench:-}; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [ -f "$tmp/pgbouncer.pid" ]; then
    local pid
    pid=$(cat "$tmp/pgbouncer.pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -f "$tmp/pgpool.pid" ]; then kill "$(tr -d '\0' <"$tmp/pgpool.pid")" 2>/dev/null; sleep 0.5; fi
  if [ -f "$tmp/data/postmaster.pid" ]; then as_server "$PG_BIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# die, free_port
. scripts/lib.sh

# wait_ready polls until a PostgreSQL-protocol server answers on port $1 (at most 30 s),
# giving up early if process $2, when given, has exited.
wait_ready() {
  for _ in $(seq 300); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -t 1 && return 0
    [ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- PostgreSQL 15 ---
pg_port=$(free_port)
printf '%s\n' "$APP_PASSWORD" >"$tmp/pwfile"
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp/pwfile"
as_server "$PG_BIN/initdb" -D "$tmp/data" -U postgres --pwfile="$tmp/pwfile" --auth=scram-sha-256 \
  --locale=C --encoding=UTF8 --no-sync --no-instructions >"$tmp/initdb.log" 2>&1 || die "initdb failed"
# Settings as in internal/pgtest; shared_buffers holds the whole scale-10 data set so runs read memory.
as_server "$PG_BIN/pg_ctl" -D "$tmp/data" -l "$tmp/postgres.log" -w -t 60 -o "-p $pg_port \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$tmp -c max_connections=300 \
  -c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || die "postgres did not start"
export PGPASSWORD=$APP_PASSWORD PGUSER=app PGDATABASE=app PGHOST=127.0.0.1 PGSSLMODE=disable
PGUSER=postgres PGDATABASE=postgres "$PG_BIN/psql" -qX -p "$pg_port" -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE app LOGIN PASSWORD '$APP_PASSWORD'" -c "CREATE DATABASE app OWNER app" ||
  die "creating role app failed"
echo "initializing pgbench data (scale $SCALE)..."
"$PG_BIN/pgbench" -i -q -s "$SCALE" -p "$pg_port" >"$tmp/pgbench-init.log" 2>&1 || die "pgbench -i failed"

# --- PgBouncer, transaction pooling ---
bouncer_port=$(free_port)
bouncer_version=$("$PGBOUNCER" --version | awk 'NR == 1 { print $2 }')
# Protocol-level prepared statements in transaction mode arrived in PgBouncer 1.21. Older ones
# (Debian 12 ships 1.18) fail -M prepared, so that cell is reported as n/a rather than as an error.
bouncer_prepared=no
if [ "$(printf '%s\n' 1.21 "$bouncer_version" | sort -V | head -n 1)" = 1.21 ]; then bouncer_prepared=yes; fi
printf '"app" "%s"\n' "$APP_PASSWORD" >"$tmp/userlist.txt"
cat >"$tmp/pgbouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$pg_port dbname=app
app_many = host=127.0.0.1 port=$pg_port dbname=app pool_size=$MANY_POOL

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $tmp/userlist.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = $(( (IDLE_CLIENTS > MANY_IDLE + MANY_ACTIVE ? IDLE_CLIENTS : MANY_IDLE + MANY_ACTIVE) + 100 ))
logfile = $tmp/pgbouncer.log
pidfile = $tmp/pgbouncer.pid
EOF
[ "$bouncer_prepared" = no ] || echo "max_prepared_statements = 200" >>"$tmp/pgbouncer.ini"
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp/userlist.txt" "$tmp/pgbouncer.ini"
as_server "$PGBOUNCER" -d -q "$tmp/pgbouncer.ini" || die "pgbouncer did not start"
wait_ready "$bouncer_port" || die "pgbouncer not accepting connections on $bouncer_port"

# --- pgpool-II with its in-memory query cache (Debian's pgpool2), when installed ---
declare -A port=([direct]=$pg_port [pgbouncer]=$bouncer_port)
if [ -x "$PGPOOL" ]; then
  pgpool_port=$(free_port)
  mkdir -p "$tmp/oiddir"
  printf 'app:TEXT%s\n' "$APP_PASSWORD" >"$tmp/pool_passwd"
  cat >"$tmp/pgpool.conf" <<EOF
backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = $pgpool_port
pcp_listen_addresses = ''
pcp_port = $(free_port)
unix_socket_directories = '$tmp'
pcp_socket_dir = '$tmp'
backend_hostname0 = '127.0.0.1'
backend_port0 = $pg_port
num_init_children = 32
max_pool = 4
enable_pool_hba = off
pool_passwd = '$tmp/pool_passwd'
sr_check_period = 0
health_check_period = 0
load_balance_mode = off
memory_cache_enabled = on
memqcache_method = 'shmem'
memqcache_total_size = 64MB
memqcache_expire = 60
memqcache_oiddir = '$tmp/oiddir'
logdir = '$tmp'
pid_file_name = '$tmp/pgpool.pid'
EOF
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$tmp/pool_passwd" "$tmp/pgpool.conf" "$tmp/oiddir"
  as_server "$PGPOOL" -n -f "$tmp/pgpool.conf" -F /dev/null >"$tmp/pgpool.log" 2>&1 &
  wait_ready "$pgpool_port" || die "pgpool not accepting connections on $pgpool_port"
  port[pgpool]=$pgpool_port
  pgpool_pid=$(tr -d '\0' <"$tmp/pgpool.pid")
fi
# --- HAProxy, TCP mode, one thread per core (run as root: it needs no other user) ---
if [ "${SKIP_HAPROXY:-}" != 1 ] && command -v haproxy >/dev/null; then
  port[haproxy]=$(free_port)
  cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn $((IDLE_CLIENTS + 100))
    nbthread $(nproc)
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen postgres
    bind 127.0.0.1:${port[haproxy]}
    server origin 127.0.0.1:$pg_port
EOF
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
  haproxy_pid=$!
  wait_ready "${port[haproxy]}" "$haproxy_pid" || die "haproxy not forwarding to PostgreSQL on ${port[haproxy]}"
fi
printf '\\set aid random(1, 1000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' >"$tmp/hotset.sql"
printf '\\sleep %d s\n' "$IDLE_HOLD" >"$tmp/idle.sql"

# --- Slipstream: edge and pool in one process ---
targets=(direct pgbouncer)
[ -z "${port[pgpool]:-}" ] || targets+=(pgpool)
[ -z "$haproxy_pid" ] || targets+=(haproxy)
if [ "${SKIP_SLIPSTREAM:-}" != 1 ]; then
  echo "building slipstream..."
  go build -o "$tmp/slipstream" ./cmd/slipstream || die "go build ./cmd/slipstream failed"
  slip_port=$(free_port)
  http_port=$(free_port)
  # Run it in $tmp so anything it writes to its working directory goes away with it.
  (cd "$tmp" && exec ./slipstream serve --origin "postgres://app:$APP_PASSWORD@127.0.0.1:$pg_port/app" \
    --pg-listen "127.0.0.1:$slip_port" --http-listen "127.0.0.1:$http_port") >"$tmp/slipstream.log" 2>&1 &
  slip_pid=$!
  wait_ready "$slip_port" "$slip_pid" || die "slipstream not accepting connections on $slip_port"
  targets+=(slipstream)
  port[slipstream]=$slip_port
  if [ -n "${AB_REV:-}" ]; then
    echo "building slipstream at $AB_REV (the A/B peer)..."
    mkdir -p "$tmp/ab-src"
    git archive "$AB_REV" | tar -x -C "$tmp/ab-src" || die "git archive $AB_REV failed"
    (cd "$tmp/ab-src" && go build -o "$tmp/slipstream-ab" ./cmd/slipstream) || die "building $AB_REV failed"
    ab_port=$(free_port)
    (cd "$tmp" && exec ./slipstream-ab serve --origin "postgres://app:$APP_PASSWORD@127.0.0.1:$pg_port/app" \
      --pg-listen "127.0.0.1:$ab_port" --http-listen "127.0.0.1:$(free_port)" --data-dir "$tmp/ab-data") >"$tmp/slipstream-ab.log" 2>&1 &
    ab_pid=$!
    wait_ready "$ab_port" "$ab_pid" || die "slipstream at $AB_REV not accepting connections on $ab_port"
    targets+=(slip-ab)
    port[slip-ab]=$ab_port
  fi
fi

# rss_kib prints process $1's resident memory in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# idle_run opens IDLE_CLIENTS sessions through $1 (whose process is $2) that log in and sleep,
# and prints the growth of the process's resident memory per session, in KiB.
idle_run() {
  local target=$1 pid=$2 out=$3 before after bench
  before=$(rss_kib "$pid")
  "$PG_BIN/pgbench" -n -f "$tmp/idle.sql" -c "$IDLE_CLIENTS" -j "$THREADS" -t 1 -p "${port[$target]}" >"$out" 2>&1 &
  bench=$!
  sleep $((IDLE_HOLD / 2))
  after=$(rss_kib "$pid")
  wait "$bench" || { echo "pgbench (idle) through $target failed:" >&2; tail -n 5 "$out" >&2; return 1; }
  awk -v a="$after" -v b="$before" -v n="$IDLE_CLIENTS" 'BEGIN { printf "%.1f", (a - b) / n }'
}

# established_on PORT prints how many established TCP connections have PORT as their local
# port (/proc/net/tcp, state 01): the sessions a proxy listening on PORT holds.
established_on() {
  awk -v port="$(printf '%04X' "$1")" '$4 == "01" { split($2, a, ":"); if (a[2] == port) n++ } END { print n + 0 }' /proc/net/tcp /proc/net/tcp6
}

# many_run holds MANY_IDLE idle sessions through target $1 (process $2, database $3) and runs
# pgbench -S with MANY_ACTIVE clients -t MANY_TXNS while they are held. It prints one
# line: tps p50_ms p99_ms failed cpu_us_per_txn kib_per_idle_session (fields "n/a" when not
# measured), and returns 1 when the idle sessions could not all log in or pgbench failed.
many_run() {
  local target=$1 pid=$2 db=$3 out=$tmp/many-$1 before after held t0 txns rc=0 i
  before=$(rss_kib "$pid")
  printf '\\sleep %d s\n' "$((MANY_LOGIN_TIMEOUT * 2 + 600))" >"$tmp/many-idle.sql"
  "$PG_BIN/pgbench" -n -f "$tmp/many-idle.sql" -c "$MANY_IDLE" -j "$THREADS" -t 1 -p "${port[$target]}" "$db" \
    >"$out-idle.out" 2>&1 &
  idle_bench=$!
  # Wait until the proxy holds every idle session (the active run's are not there yet); give up
  # when none has logged in for 60 s (a proxy out of descriptors stops accepting).
  local last=0 since=0
  for i in $(seq $((MANY_LOGIN_TIMEOUT * 2))); do
    held=$(established_on "${port[$target]}")
    [ "$held" -lt "$MANY_IDLE" ] || break
    kill -0 "$idle_bench" 2>/dev/null || { rc=1; break; }
    if [ "$held" -gt "$last" ]; then last=$held since=$i; elif [ $((i - since)) -gt 120 ]; then rc=1; break; fi
    sleep 0.5
  done
  if [ "$rc" = 1 ] || [ "$held" -lt "$MANY_IDLE" ]; then
    echo "many: $held of $MANY_IDLE idle sessions logged in through $target:" >&2
    tail -n 5 "$out-idle.out" >&2
    kill "$idle_bench" 2>/dev/null; wait "$idle_bench" 2>/dev/null; idle_bench=
    return 1
  fi
  echo "many: $MANY_IDLE idle sessions held through $target after $((i / 2)) s" >&2
  after=$(rss_kib "$pid")
  t0=$(cpu_ticks_tree "$pid")
  rm -f "$out".log*
  # -t, not -T: pgbench's -T clock runs while its clients log in, which on a loaded machine can
  # take all of it (1,000 SCRAM logins).
  "$PG_BIN/pgbench" -n -S -c "$MANY_ACTIVE" -j "$THREADS" -t "$MANY_TXNS" -l --log-prefix="$out.log" \
    -p "${port[$target]}" "$db" >"$out-active.out" 2>&1 || rc=1
  txns=$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$out-active.out")
  local us
  us=$(awk -v a="$t0" -v b="$(cpu_ticks_tree "$pid")" -v n="${txns:-0}" -v hz="$hz" \
    'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }')
  kill "$idle_bench" 2>/dev/null; wait "$idle_bench" 2>/dev/null; idle_bench=
  if [ "$rc" = 1 ] || [ "${txns:-0}" = 0 ]; then
    echo "many: pgbench -c $MANY_ACTIVE through $target failed:" >&2
    tail -n 5 "$out-active.out" >&2
    return 1
  fi
  # Field 3 of pgbench's per-transaction log is the latency in microseconds.
  local pct
  pct=$(cat "$out".log* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a n/a"; exit }
    i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
    printf "%.2f %.2f", v[i50] / 1000, v[i99] / 1000 }')
  printf '%s %s %s %s %s\n' "$(awk '/^tps = / { printf "%.0f", $3; exit }' "$out-active.out")" "$pct" \
    "$(awk '/^number of failed transactions:/ { print $5; exit }' "$out-active.out")" "$us" \
    "$(awk -v a="$after" -v b="$before" -v n="$MANY_IDLE" 'BEGIN { printf "%.1f", (a - b) / n }')"
}

# --- the runs: rounds interleave targets so drift (caches, CPU frequency) hits all alike ---
declare -A best=() idle_kib=() cpu=() syscalls=() many=()
declare -A pid_of=()
[ ! -f "$tmp/pgbouncer.pid" ] || pid_of[pgbouncer]=$(cat "$tmp/pgbouncer.pid")
[ -z "$haproxy_pid" ] || pid_of[haproxy]=$haproxy_pid
[ -z "${pgpool_pid:-}" ] || pid_of[pgpool]=$pgpool_pid
[ -z "$slip_pid" ] || pid_of[slipstream]=$slip_pid
[ -z "${ab_pid:-}" ] || pid_of[slip-ab]=$ab_pid
hz=$(getconf CLK_TCK)
runs_json=
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    if [ "$mode" = many ]; then
      [ "$round" = 1 ] || continue
      for target in pgbouncer slipstream; do
        [ -n "${pid_of[$target]:-}" ] || continue
        db=app
        [ "$target" != pgbouncer ] || db=app_many
        line=$(many_run "$target" "${pid_of[$target]}" "$db") || continue
        many[$target]=$line
        read -r m_tps m_p50 m_p99 m_failed m_us m_kib <<<"$line"
        printf 'round %d  %-8s  %-10s  tps %s  p50 ms %s  p99 ms %s  failed %s  CPU us/txn %s  KiB per idle session %s\n' \
          "$round" many "$target" "$m_tps" "$m_p50" "$m_p99" "$m_failed" "$m_us" "$m_kib"
        runs_json+="${runs_json:+,}{\"round\":$round,\"mode\":\"many\",\"target\":\"$target\",\"idle_sessions\":$MANY_IDLE,\"active_clients\":$MANY_ACTIVE,\"origin_connections\":$MANY_POOL,\"tps\":$m_tps,\"p50_ms\":$m_p50,\"p99_ms\":$m_p99,\"failed\":${m_failed:-null},\"cpu_us_per_txn\":$([ "$m_us" = n/a ] && echo null || echo "$m_us"),\"kib_per_session\":$m_kib}"
      done
      continue
    fi
    if [ "$mode" = idle ]; then
      # After many, a proxy is returning the heap 10,000 sessions grew: its growth here is noise
      # (measured: -81.8 KiB per session). Many's own figure is the one to read.
      if [[ " $MODES " == *" many "* ]]; then
        [ "$round" != 1 ] || echo "idle: skipped, mode many measured the memory of $MANY_IDLE idle sessions" >&2
        continue
      fi
      for target in pgbouncer slipstream; do
        [ -n "${pid_of[$target]:-}" ] || continue
        kib=$(idle_run "$target" "${pid_of[$target]}" "$tmp/run-$round-idle-$target.out") || continue
        printf 'round %d  %-8s  %-10s  KiB per idle session %s\n' "$round" idle "$target" "$kib"
        runs_json+="${runs_json:+,}{\"round\":$round,\"mode\":\"idle\",\"target\":\"$target\",\"kib_per_session\":$kib}"
        # The largest growth of the rounds, the first's: later ones reuse the memory it grew.
        if [ -z "${idle_kib[$target]:-}" ] || awk -v a="$kib" -v b="${idle_kib[$target]}" 'BEGIN { exit !(a > b) }'; then
          idle_kib[$target]=$kib
        fi
      done
      continue
    fi
    for target in "${targets[@]}"; do
      if [ "$target" = pgbouncer ] && [ "$mode" = prepared ] && [ "$bouncer_prepared" = no ]; then continue; fi
      # Each workload against its peers: PgBouncer pools, pgpool-II caches.
      if [ "$target" = pgbouncer ] && [ "$mode" = hotset ]; then continue; fi
      if [ "$target" = pgpool ] && [ "$mode" != hotset ]; then continue; fi
      if [ "$target" = haproxy ] && [ "$mode" = hotset ]; then continue; fi
      workload=(-S -M "$mode")
      [ "$mode" != hotset ] || workload=(-f "$tmp/hotset.sql")
      out="$tmp/run-$round-$mode-$target.out"
      tps=fail us=n/a
      pid=${pid_of[$target]:-}
      [ -z "$pid" ] || t0=$(cpu_ticks_tree "$pid")
      if "$PG_BIN/pgbench" -n "${workload[@]}" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" \
        -p "${port[$target]}" >"$out" 2>&1; then
        tps=$(awk '/^tps = / { print $3; exit }' "$out")
        tps=${tps:-fail} # pgbench exits 0 when every client aborted
        txns=$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$out")
        # The proxy's CPU per transaction (direct: n/a, PostgreSQL's backends are not a proxy).
        [ -z "$pid" ] || us=$(awk -v a="$t0" -v b="$(cpu_ticks_tree "$pid")" -v n="$txns" -v hz="$hz" \
          'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }')
      else
        echo "pgbench through $target failed:" >&2
        tail -n 5 "$out" >&2
      fi
      printf 'round %d  %-8s  %-10s  tps %s  CPU us/txn %s\n' "$round" "$mode" "$target" "$tps" "$us"
      runs_json+="${runs_json:+,}{\"round\":$round,\"mode\":\"$mode\",\"target\":\"$target\",\"tps\":$([ "$tps" = fail ] && echo null || echo "$tps"),\"cpu_us_per_txn\":$([ "$us" = n/a ] && echo null || echo "$us")}"
      key="$mode/$target"
      if [ "$tps" != fail ] && awk -v a="$tps" -v b="${best[$key]:-0}" 'BEGIN { exit !(a > b) }'; then
        best[$key]=$tps cpu[$key]=$us
      fi
    done
  done
done

# throughput_mode says whether mode $1 is a pgbench throughput run (not idle, not many).
throughput_mode() { [ "$1" != idle ] && [ "$1" != many ]; }

# --- system calls per transaction: one untimed run per proxy and workload under strace ---
if [ "$SYSCALLS" = 1 ]; then
  for mode in $MODES; do
    throughput_mode "$mode" || continue
    for target in "${targets[@]}"; do
      [ -n "${best[$mode/$target]:-}" ] && [ -n "${pid_of[$target]:-}" ] || continue
      workload=(-S -M "$mode")
      [ "$mode" != hotset ] || workload=(-f "$tmp/hotset.sql")
      out="$tmp/strace-$mode-$target.out"
      if count_syscalls "${pid_of[$target]}" "$tmp/strace-$mode-$target.txt" \
        "$PG_BIN/pgbench" -n "${workload[@]}" -c "$CLIENTS" -j "$THREADS" -T "$SYSCALL_DURATION" \
        -p "${port[$target]}" >"$out" 2>&1; then
        txns=$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$out")
        syscalls[$mode/$target]=$(syscalls_per_txn "$tmp/strace-$mode-$target.txt" "$txns")
        printf 'strace   %-8s  %-10s  syscalls/txn %s\n' "$mode" "$target" "${syscalls[$mode/$target]}"
      fi
    done
  done
fi

# --- where Slipstream's CPU goes: a CPU profile from /debug/pprof during an untimed run ---
profile_top= profile_cum=
if [ "$PROFILE_DURATION" -gt 0 ] && [ -n "$slip_pid" ] && command -v curl >/dev/null; then
  curl -sf -o "$tmp/serve.pprof" "http://127.0.0.1:$http_port/debug/pprof/profile?seconds=$PROFILE_DURATION" &
  prof=$!
  "$PG_BIN/pgbench" -n -S -M simple -c "$CLIENTS" -j "$THREADS" -T $((PROFILE_DURATION + 1)) \
    -p "${port[slipstream]}" >"$tmp/profile-run.out" 2>&1 || echo "pgbench during the profile failed" >&2
  if wait "$prof" && [ -s "$tmp/serve.pprof" ]; then
    profile_top=$(go tool pprof -top -nodecount=25 "$tmp/serve.pprof" 2>/dev/null || true)
    profile_cum=$(go tool pprof -top -cum -nodecount=40 "$tmp/serve.pprof" 2>/dev/null | sed -n '/flat%/,$p' || true)
    [ -z "${PROFILE_OUT:-}" ] || cp "$tmp/serve.pprof" "$PROFILE_OUT"
  else
    echo "no profile from slipstream's /debug/pprof/profile" >&2
  fi
fi

# --- report ---
# cell prints the best tps of a mode/target, or n/a; ratio prints a/b for two cells.
cell() { if [ -n "${best[$1]:-}" ]; then printf '%.0f' "${best[$1]}"; else echo n/a; fi; }
ratio() {
  local a=${best[$1]:-} b=${best[$2]:-}
  if [ -n "$a" ] && [ -n "$b" ]; then awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; else echo n/a; fi
}
# cpu_ratio prints the CPU per transaction of cell $1 over cell $2's, or n/a.
cpu_ratio() {
  local a=${cpu[$1]:-n/a} b=${cpu[$2]:-n/a}
  if [ "$a" != n/a ] && [ "$b" != n/a ]; then awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; else echo n/a; fi
}
echo
echo "pgbench -c $CLIENTS -j $THREADS -T $DURATION, scale $SCALE, best of $ROUNDS; PgBouncer $bouncer_version; $(uptime)"
printf '%-9s %9s %10s %9s %9s %11s %12s %9s %12s %9s %10s\n' mode direct pgbouncer pgpool haproxy slipstream \
  bouncer/dir pool/dir haproxy/dir slip/dir slip/peer
for mode in $MODES; do
  throughput_mode "$mode" || continue
  peer=pgbouncer
  [ "$mode" != hotset ] || peer=pgpool
  printf '%-9s %9s %10s %9s %9s %11s %12s %9s %12s %9s %10s\n' "$mode" \
    "$(cell "$mode/direct")" "$(cell "$mode/pgbouncer")" "$(cell "$mode/pgpool")" "$(cell "$mode/haproxy")" "$(cell "$mode/slipstream")" \
    "$(ratio "$mode/pgbouncer" "$mode/direct")" "$(ratio "$mode/pgpool" "$mode/direct")" "$(ratio "$mode/haproxy" "$mode/direct")" \
    "$(ratio "$mode/slipstream" "$mode/direct")" "$(ratio "$mode/slipstream" "$mode/$peer")"
done
echo
echo "proxy CPU per transaction (us, user + system of the process tree, in each cell's best round)"
[ "$SYSCALLS" = 1 ] && echo "and system calls per transaction (strace -c -f, ${SYSCALL_DURATION}s untimed run, the five commonest)" ||
  echo "(system calls: n/a, strace not installed or SYSCALLS=0)"
for mode in $MODES; do
  throughput_mode "$mode" || continue
  for target in pgbouncer pgpool haproxy slipstream; do
    [ -n "${best[$mode/$target]:-}" ] || continue
    printf '%-9s %-10s  CPU us/txn %6s  syscalls/txn %s\n' "$mode" "$target" "${cpu[$mode/$target]:-n/a}" "${syscalls[$mode/$target]:-n/a}"
  done
  peer=pgbouncer
  [ "$mode" != hotset ] || peer=pgpool
  printf '%-9s slipstream CPU/txn over %s: %s, over haproxy: %s\n' "$mode" "$peer" \
    "$(cpu_ratio "$mode/slipstream" "$mode/$peer")" "$(cpu_ratio "$mode/slipstream" "$mode/haproxy")"
done
if [ -n "${ab_pid:-}" ]; then
  echo
  echo "A/B: the working tree (slipstream) against $AB_REV (slip-ab), same rounds"
  printf '%-9s %11s %11s %9s %14s %14s\n' mode slipstream slip-ab tps_ratio "CPU us/txn new" "CPU us/txn old"
  for mode in $MODES; do
    throughput_mode "$mode" || continue
    printf '%-9s %11s %11s %9s %14s %14s\n' "$mode" "$(cell "$mode/slipstream")" "$(cell "$mode/slip-ab")" \
      "$(ratio "$mode/slipstream" "$mode/slip-ab")" "${cpu[$mode/slipstream]:-n/a}" "${cpu[$mode/slip-ab]:-n/a}"
  done
fi
if [[ " $MODES " == *" idle "* ]] && [[ " $MODES " != *" many "* ]]; then
  echo
  echo "idle sessions ($IDLE_CLIENTS logged in, then sleeping): resident memory growth per session"
  printf '%-11s %10s %11s %10s\n' "" pgbouncer slipstream slip/bouncer
  printf '%-11s %10s %11s %10s\n' "KiB" "${idle_kib[pgbouncer]:-n/a}" "${idle_kib[slipstream]:-n/a}" \
    "$(if [ -n "${idle_kib[pgbouncer]:-}" ] && [ -n "${idle_kib[slipstream]:-}" ]; then
      awk -v a="${idle_kib[slipstream]}" -v b="${idle_kib[pgbouncer]}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'
    else echo n/a; fi)"
fi
if [[ " $MODES " == *" many "* ]]; then
  echo
  echo "many: $MANY_IDLE idle sessions held while pgbench -S -c $MANY_ACTIVE -j $THREADS -t $MANY_TXNS runs through $MANY_POOL origin connections"
  printf '%-11s %7s %8s %8s %7s %11s %16s\n' target tps "p50 ms" "p99 ms" failed "CPU us/txn" "KiB/idle session"
  for target in pgbouncer slipstream; do
    [ -n "${many[$target]:-}" ] || { printf '%-11s %7s\n' "$target" failed; continue; }
    read -r m_tps m_p50 m_p99 m_failed m_us m_kib <<<"${many[$target]}"
    printf '%-11s %7s %8s %8s %7s %11s %16s\n' "$target" "$m_tps" "$m_p50" "$m_p99" "$m_failed" "$m_us" "$m_kib"
  done
fi
if [ -n "$profile_top" ]; then
  echo
  echo "where slipstream's CPU went (pgbench -S -M simple -c $CLIENTS, ${PROFILE_DURATION}s, untimed; go tool pprof -top):"
  echo "$profile_top" | sed -n '1,32p'
  echo "cumulative (go tool pprof -top -cum):"
  echo "$profile_cum"
fi

if [ -n "$json_out" ]; then
  num() { local v=${best[$1]:-}; echo "${v:-null}"; }
  best_json=
  for mode in $MODES; do
    throughput_mode "$mode" || continue
    best_json+="${best_json:+,}\"$mode\":{\"direct\":$(num "$mode/direct"),\"pgbouncer\":$(num "$mode/pgbouncer"),\"pgpool\":$(num "$mode/pgpool"),\"haproxy\":$(num "$mode/haproxy"),\"slipstream\":$(num "$mode/slipstream")}"
  done
  printf '{"clients":%d,"threads":%d,"duration_s":%d,"scale":%d,"rounds":%d,"pgbouncer_version":"%s","best_tps":{%s},"runs":[%s]}\n' \
    "$CLIENTS" "$THREADS" "$DURATION" "$SCALE" "$ROUNDS" "$bouncer_version" "$best_json" "$runs_json" >"$json_out"
  echo "wrote $json_out"
fi
