#!/usr/bin/env bash
# The README's test command. Installs what the tests need when it is missing (Debian 12,
# as root or with sudo), then vets and tests every package with the race detector.
# Safe to run with no stdin (CI=true): nothing here prompts.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=${SLIPSTREAM_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}

missing=()
[ -x "$pg_bin/postgres" ] || missing+=(postgresql-15)   # also brings pgbench and the postgres user
[ -x /usr/lib/postgresql/15/bin/psql ] || missing+=(postgresql-client-15)
[ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
[ -x /usr/sbin/pgpool ] || missing+=(pgpool2)          # the benchmark's caching peer
command -v mariadbd >/dev/null || missing+=(mariadb-server)  # MariaDB 10.11, started by internal/mytest
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v sysbench >/dev/null || missing+=(sysbench)    # the MySQL benchmark's load generator
command -v haproxy >/dev/null || missing+=(haproxy)      # the benchmarks' TCP-mode peer (docs/cost.md)
command -v strace >/dev/null || missing+=(strace)        # the benchmarks' system calls per transaction
command -v node >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)          # the README's runnable examples (test/e2e/docs_test.go)
command -v openssl >/dev/null || missing+=(openssl)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)   # go test -race needs cgo
command -v chromium >/dev/null || missing+=(chromium)    # the dashboard's test loads it headless

if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "test.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # apt may start the system PgBouncer, pgpool-II and MariaDB; the tests start their own.
  for svc in pgbouncer pgpool2 mariadb; do
    if [[ " ${missing[*]} " == *" $svc "* ]]; then
      "${sudo[@]}" systemctl stop "$svc" >/dev/null 2>&1 ||
        "${sudo[@]}" service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
fi

if [ -f test/node/package.json ]; then
  if [ -f test/node/package-lock.json ]; then
    (cd test/node && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd test/node && npm install --no-audit --no-fund --loglevel=error)
  fi
fi

go vet ./...
go test -race -count=1 -timeout 15m ./...
