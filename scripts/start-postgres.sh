#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1:55432 for the storage tests (idempotent).
#
#   eval "$(scripts/start-postgres.sh --export)"   # sets LDNCARE_TEST_POSTGRES_URL
#   scripts/start-postgres.sh                      # prints the URL
#   scripts/start-postgres.sh --stop               # stops it and deletes its data
#
# Trust authentication on loopback only; never use this cluster for real data.
# initdb refuses to run as root, so the server runs as the "postgres" user (runuser).
set -euo pipefail

PORT="${LDNCARE_PG_PORT:-55432}"
PGROOT="${LDNCARE_PG_ROOT:-/tmp/ldncare-pg-$PORT}"
DB="ldncare_test"
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_postgres() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PGBIN="$(find_bin || true)"
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "start-postgres: installing postgresql with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  PGBIN="$(find_bin)"
fi

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$PGROOT/data/postmaster.pid" ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$PGROOT"
  exit 0
fi

if [ ! -f "$PGROOT/data/PG_VERSION" ]; then
  rm -rf "$PGROOT"
  mkdir -p "$PGROOT"
  if [ "$(id -u)" = "0" ]; then chown postgres:postgres "$PGROOT"; fi
  as_postgres "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$PGROOT/initdb.log" 2>&1 || { cat "$PGROOT/initdb.log" >&2; exit 1; }
fi

if ! as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
  as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$PGROOT" \
    start >&2 || { cat "$PGROOT/server.log" >&2; exit 1; }
fi

PSQL="$PGBIN/psql"
if ! "$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
     "select 1 from pg_database where datname='$DB'" postgres | grep -q 1; then
  "$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -qc "create database $DB" postgres >&2
fi

if [ "${1:-}" = "--export" ]; then
  echo "export LDNCARE_TEST_POSTGRES_URL=$URL"
else
  echo "$URL"
fi
