#!/usr/bin/env bash
# Starts a throw-away PostgreSQL on 127.0.0.1 for tests and benchmarks, installing Debian's package when missing.
# Prints the DATABASE_URL to use. `scripts/postgres.sh stop` stops it.
set -euo pipefail

# Below the kernel's range for outgoing ports (32768–60999 here), so that no connection can be holding it: on
# 55432, inside that range, CI twice failed to start PostgreSQL ("Address already in use") right after a benchmark
# had opened and closed 15,000 connections.
PORT="${LATCHKEY_PG_PORT:-25432}"
DATA="${LATCHKEY_PG_DATA:-/tmp/latchkey-postgres}"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ "${1:-start}" = "stop" ]; then
  [ -n "$(pg_bin)" ] && [ -d "$DATA" ] && runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi

if [ -z "$(pg_bin)" ]; then
  echo "Installing PostgreSQL from Debian's packages…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN="$(pg_bin)"

# PostgreSQL refuses to run as root: it runs as the postgres user on a data folder of our own.
# One left running on another port (an earlier default, say) is stopped, and this one started in its place.
if runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 && [ "$(sed -n 4p "$DATA/postmaster.pid")" != "$PORT" ]; then
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null
fi
if runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  :
else
  rm -rf "$DATA"
  mkdir -p "$DATA"
  chown postgres:postgres "$DATA"
  runuser -u postgres -- "$BIN/initdb" -D "$DATA" -A trust -U postgres --no-sync >/dev/null
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c fsync=off -c max_connections=1000" start >/dev/null
fi
psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'latchkey'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE latchkey" >/dev/null
echo "postgres://postgres@127.0.0.1:$PORT/latchkey"
