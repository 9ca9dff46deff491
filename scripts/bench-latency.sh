#!/usr/bin/env bash
# bench-latency.sh: the headline tables of docs/benchmarks.md, Hyperdrive's demo on one machine.
# Starts a PostgreSQL 15 and a MariaDB 10.11, each requiring TLS as a remote database does
# (a self-signed certificate made here), and runs against each
#
#   slipstream bench latency --topology local --rtt $RTT --origin URL --json ... --chart ...
#
# with the direct path over TLS (postgres sslmode=require, mysql tls=skip-verify) and the
# application's leg to Slipstream's edge in plain TCP on loopback, as a sidecar is used; then
# the Postgres run again with --edge-tls (TLS to the edge too).
#
#   scripts/bench-latency.sh [--out DIR]     results in DIR (default ./bench-latency-out):
#                                            {pg,mysql,pg-edge-tls}.{txt,json,svg}
#
# Environment:
#   RTT=50ms      the simulated round trip between the application's side and the database's
#   QUERIES=200   timed queries per series
#   RUNS="pg mysql pg-edge-tls"
#   PG_BIN=/usr/lib/postgresql/15/bin
#
# Everything is started on free loopback ports inside one temp dir and removed on exit. Run as
# root (servers run as users postgres and mysql) or as a normal user. Installs nothing:
# ./scripts/test.sh does.
set -euo pipefail

out=./bench-latency-out
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-latency.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(realpath -- "$out")
cd "$(dirname "$0")/.."

RTT=${RTT:-50ms}
QUERIES=${QUERIES:-200}
RUNS=${RUNS:-pg mysql pg-edge-tls}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
APP_PASSWORD=app-secret

for bin in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/psql" "$(command -v mariadbd || echo mariadbd)" \
  "$(command -v mariadb-install-db || echo mariadb-install-db)" "$(command -v mariadb || echo mariadb)" \
  "$(command -v openssl || echo openssl)"; do
  [ -x "$bin" ] || { echo "bench-latency.sh: missing $bin (./scripts/test.sh installs it)" >&2; exit 1; }
done

root=$([ "$(id -u)" -eq 0 ] && echo yes || echo no)
as_user() { # as_user USER CMD...: run a server binary as USER when we are root
  local u=$1
  shift
  if [ "$root" = yes ]; then runuser -u "$u" -- "$@"; else "$@"; fi
}

tmp=$(mktemp -d /tmp/slipstream-bench-latency.XXXXXX)
chmod 755 "$tmp"
mkdir "$tmp/pg" "$tmp/my"
[ "$root" = no ] || { chown postgres: "$tmp/pg"; chown mysql: "$tmp/my"; }
my_pid=

cleanup() {
  set +e
  if [ -n "$my_pid" ]; then kill "$my_pid" 2>/dev/null; wait "$my_pid" 2>/dev/null; fi
  if [ -f "$tmp/pg/data/postmaster.pid" ]; then
    as_user postgres "$PG_BIN/pg_ctl" -D "$tmp/pg/data" -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# die, free_port
. scripts/lib.sh

# A self-signed certificate for both servers, as a managed database's TLS would present (the
# clients do not verify it: sslmode=require, tls=skip-verify).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$tmp/server.key" -out "$tmp/server.crt" >/dev/null 2>&1 || die "openssl req failed"
for d in pg my; do
  cp "$tmp/server.crt" "$tmp/server.key" "$tmp/$d/"
  chmod 600 "$tmp/$d/server.key"
done
[ "$root" = no ] || { chown postgres: "$tmp"/pg/server.*; chown mysql: "$tmp"/my/server.*; }

# --- PostgreSQL 15: SCRAM-SHA-256, TLS ---
pg_port=$(free_port)
printf '%s\n' "$APP_PASSWORD" >"$tmp/pg/pwfile"
[ "$root" = no ] || chown postgres: "$tmp/pg/pwfile"
as_user postgres "$PG_BIN/initdb" -D "$tmp/pg/data" -U postgres --pwfile="$tmp/pg/pwfile" --auth=scram-sha-256 \
  --locale=C --encoding=UTF8 --no-sync --no-instructions >"$tmp/pg/initdb.log" 2>&1 || die "initdb failed"
as_user postgres "$PG_BIN/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/postgres.log" -w -t 60 -o "-p $pg_port \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$tmp/pg -c max_connections=200 \
  -c fsync=off -c synchronous_commit=off -c ssl=on \
  -c ssl_cert_file=$tmp/pg/server.crt -c ssl_key_file=$tmp/pg/server.key" \
  start >/dev/null || die "postgres did not start"
PGPASSWORD=$APP_PASSWORD "$PG_BIN/psql" -qX -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE app LOGIN PASSWORD '$APP_PASSWORD'" -c "CREATE DATABASE app OWNER app" >/dev/null ||
  die "creating role app failed"

# --- MariaDB 10.11: mysql_native_password, TLS ---
my_port=$(free_port)
as_user mysql mariadb-install-db --no-defaults --datadir="$tmp/my/data" --auth-root-authentication-method=socket \
  --skip-test-db >"$tmp/my/install.log" 2>&1 || die "mariadb-install-db failed"
my_user=()
[ "$root" = no ] || my_user=(--user=mysql)
mariadbd --no-defaults "${my_user[@]}" --datadir="$tmp/my/data" --socket="$tmp/my/mysqld.sock" \
  --port="$my_port" --bind-address=127.0.0.1 --log-error="$tmp/my/error.log" --pid-file="$tmp/my/mysqld.pid" \
  --max-connections=600 --innodb-flush-log-at-trx-commit=0 --skip-name-resolve --innodb-buffer-pool-size=64M \
  --ssl-cert="$tmp/my/server.crt" --ssl-key="$tmp/my/server.key" >/dev/null 2>&1 &
my_pid=$!
for _ in $(seq 300); do
  mariadb -S "$tmp/my/mysqld.sock" -u root -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$my_pid" 2>/dev/null || die "mariadbd exited"
  sleep 0.1
done
mariadb -S "$tmp/my/mysqld.sock" -u root -e "CREATE DATABASE app; CREATE USER 'app'@'%' IDENTIFIED BY '$APP_PASSWORD';
  GRANT ALL ON app.* TO 'app'@'%'; GRANT PROCESS ON *.* TO 'app'@'%'" || die "creating user app failed"

echo "building slipstream..."
go build -o "$tmp/slipstream" ./cmd/slipstream || die "go build ./cmd/slipstream failed"

pg_url="postgres://app:$APP_PASSWORD@127.0.0.1:$pg_port/app?sslmode=require"
my_url="mysql://app:$APP_PASSWORD@127.0.0.1:$my_port/app?tls=skip-verify"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
for run in $RUNS; do
  case $run in
    pg) args=(--origin "$pg_url") ;;
    mysql) args=(--origin "$my_url") ;;
    pg-edge-tls) args=(--origin "$pg_url" --edge-tls) ;;
    *) die "unknown run $run (RUNS takes pg, mysql, pg-edge-tls)" ;;
  esac
  echo
  echo "== $run: load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%H:%M:%S UTC')"
  (cd "$tmp" && ./slipstream bench latency --topology local --rtt "$RTT" --queries "$QUERIES" "${args[@]}" \
    --json "$out/$run.json" --chart "$out/$run.svg") | tee "$out/$run.txt"
done
echo
echo "results in $out"
