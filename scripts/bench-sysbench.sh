#!/usr/bin/env bash
# bench-sysbench.sh: sysbench through up to four targets in one run: MariaDB directly, Slipstream
# with its result cache disabled (pooling only), Slipstream with caching on (the default), and,
# when it is installed (apt-get install -y haproxy), HAProxy in TCP mode in front of the same
# MariaDB: the cheapest proxy there is (it forwards bytes and parses nothing), the peer that
# shows what any process between sysbench and MariaDB costs on this machine.
#
# Workloads (prepared statements on: --db-ps-mode=auto):
#   oltp_point_select  one SELECT c FROM sbtestN WHERE id = ? per transaction
#   oltp_read_write    sysbench's OLTP mix: point and range selects, updates, delete + insert,
#                      in BEGIN ... COMMIT; must run with zero errors (deadlocks, which sysbench
#                      retries and the workload causes directly too, are counted apart)
#
#   scripts/bench-sysbench.sh
#
# Environment:
#   DURATION=20        seconds per sysbench run
#   WARMUP=5           seconds of the same workload, untimed, before each timed run (fills
#                      MariaDB's buffer pool and Slipstream's cache alike: sysbench 1.0 has no
#                      --warmup-time)
#   THREADS=16         sysbench --threads (client connections)
#   TABLES=4           sysbench --tables
#   TABLE_SIZE=10000   sysbench --table-size (rows per table)
#   ROUNDS=2           interleaved rounds; each cell reports the best round
#   SKIP_SLIPSTREAM=1  leave Slipstream out (no build): MariaDB directly only
#   AB_REV=<git revision>  an A/B run: Slipstream built at that revision, caching on, as one more
#                      target (cached-ab) in the same rounds; the report adds cached / cached-ab
#   WORKLOADS="oltp_point_select oltp_read_write"
#   SKIP_HAPROXY=1     leave HAProxy out even when installed
#   SYSCALLS=1         count each proxy's system calls per transaction with strace -c -f in a
#                      separate, untimed SYSCALL_DURATION-second run (default 5) of each
#                      workload (strace slows the proxy down); n/a without strace
#   IDLE_CLIENTS=200   idle connections opened per proxy to report its resident memory per
#                      idle client (VmRSS growth); 0 skips it
#
# Everything (a MariaDB server, two Slipstream processes) is started here on free loopback
# ports inside one temp dir and removed on exit. Run as root (MariaDB runs as user mysql) or
# as a normal user. Installs nothing: ./scripts/test.sh installs mariadb-server and sysbench.
# Exits 1 when a run fails: sysbench stops at any error but those it retries.
set -euo pipefail

case ${1:-} in
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  "") ;;
  *) echo "bench-sysbench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-16}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
ROUNDS=${ROUNDS:-2}
WORKLOADS=${WORKLOADS:-oltp_point_select oltp_read_write}
SYSCALLS=${SYSCALLS:-1}
SYSCALL_DURATION=${SYSCALL_DURATION:-5}
IDLE_CLIENTS=${IDLE_CLIENTS:-200}
command -v strace >/dev/null || SYSCALLS=0
APP_PASSWORD=app-secret

for bin in mariadbd mariadb-install-db mariadb mariadb-admin sysbench; do
  command -v "$bin" >/dev/null || { echo "bench-sysbench.sh: missing $bin (./scripts/test.sh installs it)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/slipstream-sysbench.XXXXXX)
as_server=()
if [ "$(id -u)" -eq 0 ]; then
  chown mysql: "$tmp"
  as_server=(runuser -u mysql --)
fi
maria_pid=
slip_pids=()
haproxy_pid=

cleanup() {
  set +e
  for pid in "${slip_pids[@]}" $haproxy_pid; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [ -n "$maria_pid" ]; then
    kill "$maria_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$maria_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$maria_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# die, free_port
. scripts/lib.sh

# wait_mysql polls until a MySQL-protocol server lets app in on port $1 (at most 30 s), giving
# up early if process $2 has exited.
wait_mysql() {
  for _ in $(seq 300); do
    mariadb --no-defaults -h 127.0.0.1 -P "$1" -u app -p"$APP_PASSWORD" app -e 'SELECT 1' >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- MariaDB, as internal/mytest starts it ---
maria_port=$(free_port)
"${as_server[@]}" mariadb-install-db --no-defaults --datadir="$tmp/data" --tmpdir="$tmp" --auth-root-authentication-method=socket \
  --skip-test-db >"$tmp/install.log" 2>&1 || die "mariadb-install-db failed"
# Durability off, as in the tests; the buffer pool holds the whole data set so runs read memory.
maria_args=(--no-defaults --datadir="$tmp/data" --tmpdir="$tmp" --socket="$tmp/mysqld.sock" --port="$maria_port"
  --bind-address=127.0.0.1 --log-error="$tmp/mariadb.log" --pid-file="$tmp/mysqld.pid" --max-connections=600
  --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 --skip-name-resolve --innodb-buffer-pool-size=256M
  --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci)
[ "$(id -u)" -ne 0 ] || maria_args+=(--user=mysql)
mariadbd "${maria_args[@]}" >"$tmp/mariadbd.out.log" 2>&1 &
maria_pid=$!
for _ in $(seq 300); do
  mariadb-admin --no-defaults -S "$tmp/mysqld.sock" -u "$(id -un)" ping >/dev/null 2>&1 && break
  kill -0 "$maria_pid" 2>/dev/null || die "mariadbd exited during startup"
  sleep 0.1
done
mariadb --no-defaults -S "$tmp/mysqld.sock" -u "$(id -un)" -e "CREATE DATABASE app;
  CREATE USER 'app'@'%' IDENTIFIED BY '$APP_PASSWORD'; GRANT ALL ON app.* TO 'app'@'%'" ||
  die "creating user app failed"
maria_version=$(mariadb --no-defaults -S "$tmp/mysqld.sock" -u "$(id -un)" -N -e 'SELECT VERSION()')

sb_common=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app --mysql-password="$APP_PASSWORD"
  --mysql-db=app --tables="$TABLES" --table-size="$TABLE_SIZE")
echo "preparing sysbench tables ($TABLES x $TABLE_SIZE rows)..."
sysbench oltp_read_write "${sb_common[@]}" --mysql-port="$maria_port" prepare >"$tmp/prepare.log" 2>&1 ||
  die "sysbench prepare failed"

# --- Slipstream: one process uncached, one cached (the default) ---
declare -A port=([direct]=$maria_port) pid=([direct]=$maria_pid)
targets=(direct)
if [ "${SKIP_SLIPSTREAM:-}" != 1 ]; then
  echo "building slipstream..."
  go build -o "$tmp/slipstream" ./cmd/slipstream || die "go build ./cmd/slipstream failed"
  declare -A bin_of
  bin_of=([uncached]=slipstream [cached]=slipstream)
  if [ -n "${AB_REV:-}" ]; then
    echo "building slipstream at $AB_REV (the A/B peer)..."
    mkdir -p "$tmp/ab-src"
    git archive "$AB_REV" | tar -x -C "$tmp/ab-src" || die "git archive $AB_REV failed"
    (cd "$tmp/ab-src" && go build -o "$tmp/slipstream-ab" ./cmd/slipstream) || die "building $AB_REV failed"
    bin_of[cached-ab]=slipstream-ab
  fi
  for target in uncached cached ${AB_REV:+cached-ab}; do
    mkdir -p "$tmp/$target"
    # max_connections covers every sysbench thread: this measures the proxy, not queueing.
    cat >"$tmp/$target/slipstream.toml" <<EOF
[[database]]
name = "app"
kind = "mysql"
origin = "mysql://app:$APP_PASSWORD@127.0.0.1:$maria_port/app"
max_connections = $THREADS
EOF
    [ "$target" != uncached ] || printf '\n[database.caching]\ndisabled = true\n' >>"$tmp/$target/slipstream.toml"
    # Every listener on port 0: serve prints the MySQL address it got.
    (cd "$tmp/$target" && exec "../${bin_of[$target]}" serve --config slipstream.toml --mysql-listen 127.0.0.1:0 \
      --pg-listen 127.0.0.1:0 --http-listen 127.0.0.1:0) >"$tmp/slipstream-$target.log" 2>&1 &
    slip_pids+=($!)
    pid[$target]=$!
    for _ in $(seq 300); do
      port[$target]=$(sed -nE 's|^database app: mysql://[^@]*@127\.0\.0\.1:([0-9]+)/.*|\1|p' "$tmp/slipstream-$target.log")
      [ -z "${port[$target]}" ] || break
      kill -0 "${slip_pids[-1]}" 2>/dev/null || die "slipstream ($target) exited"
      sleep 0.1
    done
    [ -n "${port[$target]}" ] || die "slipstream ($target) printed no mysql:// address"
    wait_mysql "${port[$target]}" "${slip_pids[-1]}" || die "slipstream ($target) not accepting MySQL clients on ${port[$target]}"
    targets+=("$target")
  done
fi

# --- HAProxy, TCP mode, one thread per core ---
if [ "${SKIP_HAPROXY:-}" != 1 ] && command -v haproxy >/dev/null; then
  port[haproxy]=$(free_port)
  cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 1000
    nbthread $(nproc)
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mariadb
    bind 127.0.0.1:${port[haproxy]}
    server maria 127.0.0.1:$maria_port
EOF
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
  haproxy_pid=$!
  pid[haproxy]=$haproxy_pid
  wait_mysql "${port[haproxy]}" "$haproxy_pid" || die "haproxy not forwarding to MariaDB on ${port[haproxy]}"
  targets+=(haproxy)
fi

# --- the runs: rounds interleave targets so drift (caches, CPU frequency) hits all alike ---
declare -A best=() errors=() cpu=()
# cpu_ticks PID: user + system CPU time of a process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
failed=0
for round in $(seq "$ROUNDS"); do
  for workload in $WORKLOADS; do
    for target in "${targets[@]}"; do
      out="$tmp/run-$round-$workload-$target.out"
      tps=fail
      if [ "$WARMUP" -gt 0 ]; then
        sysbench "$workload" "${sb_common[@]}" --mysql-port="${port[$target]}" --db-ps-mode=auto \
          --threads="$THREADS" --time="$WARMUP" run >"$out.warmup" 2>&1 || true
      fi
      t0=$(cpu_ticks "${pid[$target]}")
      if sysbench "$workload" "${sb_common[@]}" --mysql-port="${port[$target]}" --db-ps-mode=auto \
        --threads="$THREADS" --time="$DURATION" --verbosity=5 run >"$out" 2>&1; then
        # "transactions: 12345 (617.23 per sec.)" and "ignored errors: 0 (0.00 per sec.)"
        tps=$(awk '/transactions:/ { gsub(/\(/, "", $3); print $3; exit }' "$out")
        txns=$(awk '/transactions:/ { print $2; exit }' "$out")
        # CPU the server (direct: MariaDB) or the proxy (MariaDB's share not counted) used per
        # transaction: the cost of the process in between, steadier than tps on a busy machine.
        us=$(awk -v a="$t0" -v b="$(cpu_ticks "${pid[$target]}")" -v n="$txns" -v hz="$hz" \
          'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "n/a" }')
        errs=$(awk '/ignored errors:/ { print $3; exit }' "$out")
        errs=${errs:-0}
        # sysbench retries deadlocks and lock wait timeouts (--mysql-ignore-errors' default);
        # say which errors they were.
        [ "$errs" = 0 ] || retried=$(grep -o 'Ignoring error.*' "$out" | sort | uniq -c | head -n 5 || true)
        errors[$workload/$target]=$((${errors[$workload/$target]:-0} + errs))
      else
        failed=1
        echo "sysbench $workload through $target failed:" >&2
        tail -n 5 "$out" >&2
      fi
      printf 'round %d  %-17s  %-8s  tps %s  CPU us/txn %s  retried %s\n' "$round" "$workload" "$target" "$tps" \
        "${us:-n/a}" "${errs:-n/a}"
      [ -z "${retried:-}" ] || printf '%s\n' "$retried" | sed -E 's/^ */    /'
      retried=
      key="$workload/$target"
      if [ "$tps" != fail ] && awk -v a="$tps" -v b="${best[$key]:-0}" 'BEGIN { exit !(a > b) }'; then
        best[$key]=$tps cpu[$key]=$us
      fi
      unset errs us
    done
  done
done

# --- system calls per transaction and memory per idle client, for each proxy ---
declare -A syscalls=() idle_kib=()
for target in "${targets[@]}"; do
  [ "$target" != direct ] || continue
  if [ "$SYSCALLS" = 1 ]; then
    for workload in $WORKLOADS; do
      out="$tmp/strace-$workload-$target.out"
      if count_syscalls "${pid[$target]}" "$tmp/strace-$workload-$target.txt" sysbench "$workload" "${sb_common[@]}" \
        --mysql-port="${port[$target]}" --db-ps-mode=auto --threads="$THREADS" --time="$SYSCALL_DURATION" run >"$out" 2>&1; then
        txns=$(awk '/transactions:/ { print $2; exit }' "$out")
        syscalls[$workload/$target]=$(syscalls_per_txn "$tmp/strace-$workload-$target.txt" "$txns")
      fi
    done
  fi
  if [ "$IDLE_CLIENTS" -gt 0 ]; then
    # Idle clients: one mariadb CLI each, logged in and sleeping in a SELECT SLEEP() would
    # hold an origin connection; so use raw logins that then wait on stdin.
    before=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid[$target]}/status")
    idle_pids=()
    mkfifo "$tmp/idle-$target.fifo"
    exec 9<>"$tmp/idle-$target.fifo"
    for _ in $(seq "$IDLE_CLIENTS"); do
      mariadb --no-defaults -h 127.0.0.1 -P "${port[$target]}" -u app -p"$APP_PASSWORD" app <&9 >/dev/null 2>&1 &
      idle_pids+=($!)
    done
    # Logged in once the proxy holds as many established client connections as CLIs are
    # still running (one refused exits); at most 30 s. The figure is per connected client.
    n=0
    for _ in $(seq 300); do
      n=$(ss -Htn state established "( sport = :${port[$target]} )" | wc -l)
      alive=0
      for p in "${idle_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
      [ "$n" -lt "$alive" ] || break
      sleep 0.1
    done
    after=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid[$target]}/status")
    idle_kib[$target]=$(awk -v a="$after" -v b="$before" -v n="$n" \
      'BEGIN { if (n > 0) printf "%.1f (%d clients)", (a - b) / n, n; else print "n/a" }')
    exec 9>&-
    kill "${idle_pids[@]}" 2>/dev/null
    wait "${idle_pids[@]}" 2>/dev/null || true
    rm -f "$tmp/idle-$target.fifo"
  fi
done

# --- report ---
cell() { if [ -n "${best[$1]:-}" ]; then printf '%.0f' "${best[$1]}"; else echo n/a; fi; }
ratio() {
  local a=${best[$1]:-} b=${best[$2]:-}
  if [ -n "$a" ] && [ -n "$b" ]; then awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; else echo n/a; fi
}
echo
echo "sysbench --threads=$THREADS --time=$DURATION (after ${WARMUP}s untimed) --db-ps-mode=auto, $TABLES tables x $TABLE_SIZE rows, best of $ROUNDS; MariaDB $maria_version"
printf '%-18s %9s %9s %9s %9s %13s %11s %12s %s\n' workload direct uncached cached haproxy uncached/dir cached/dir haproxy/dir \
  'retried (direct/uncached/cached/haproxy)'
for workload in $WORKLOADS; do
  printf '%-18s %9s %9s %9s %9s %13s %11s %12s %s\n' "$workload" \
    "$(cell "$workload/direct")" "$(cell "$workload/uncached")" "$(cell "$workload/cached")" "$(cell "$workload/haproxy")" \
    "$(ratio "$workload/uncached" "$workload/direct")" "$(ratio "$workload/cached" "$workload/direct")" \
    "$(ratio "$workload/haproxy" "$workload/direct")" \
    "${errors[$workload/direct]:-n/a}/${errors[$workload/uncached]:-n/a}/${errors[$workload/cached]:-n/a}/${errors[$workload/haproxy]:-n/a}"
done
echo
echo "CPU per transaction (us) of the process sysbench talks to, in each target's best round:"
printf '%-18s %9s %9s %9s %9s\n' workload "direct (MariaDB)" uncached cached haproxy
for workload in $WORKLOADS; do
  printf '%-18s %16s %9s %9s %9s\n' "$workload" "${cpu[$workload/direct]:-n/a}" "${cpu[$workload/uncached]:-n/a}" \
    "${cpu[$workload/cached]:-n/a}" "${cpu[$workload/haproxy]:-n/a}"
done
echo
echo "each proxy's system calls per transaction (strace -c -f, ${SYSCALL_DURATION}s untimed run, the five commonest) and"
echo "resident memory growth per idle client ($IDLE_CLIENTS mariadb CLIs logged in and waiting), KiB:"
for target in "${targets[@]}"; do
  [ "$target" != direct ] || continue
  for workload in $WORKLOADS; do
    printf '%-9s %-18s syscalls/txn %s\n' "$target" "$workload" "${syscalls[$workload/$target]:-n/a}"
  done
  printf '%-9s %-18s KiB per idle client %s\n' "$target" idle "${idle_kib[$target]:-n/a}"
done
if [ -n "${AB_REV:-}" ]; then
  echo
  echo "A/B: the working tree (cached) against $AB_REV (cached-ab), same rounds"
  for workload in $WORKLOADS; do
    printf '%-18s tps %s / %s = %s   CPU us/txn %s / %s\n' "$workload" "$(cell "$workload/cached")" \
      "$(cell "$workload/cached-ab")" "$(ratio "$workload/cached" "$workload/cached-ab")" \
      "${cpu[$workload/cached]:-n/a}" "${cpu[$workload/cached-ab]:-n/a}"
  done
fi
echo "retried: errors sysbench ignores and retries (--mysql-ignore-errors=1213,1020,1205: deadlocks,"
echo "record changed, lock wait timeouts), which the workload causes directly too; any other error fails the run."
[ "$failed" = 0 ] || echo "bench-sysbench.sh: a run failed (see above)" >&2
exit "$failed"
