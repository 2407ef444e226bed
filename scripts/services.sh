#!/usr/bin/env bash
# Scale-out set-up on one machine: PostgreSQL and Redis from Debian packages, on loopback, data under
# var/services. Prints the settings to export; then run `pension-cert serve` and any number of
# `celery -A service.adapters.workers.tasks worker` (or `pension-cert worker`) processes.
#   scripts/services.sh start   # install if needed, start, migrate (Alembic), print the exports
#   scripts/services.sh stop
# The test suite does not need this: it starts its own throwaway servers from the same binaries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_PORT="${PENSION_CERT_PG_PORT:-55432}"
REDIS_PORT="${PENSION_CERT_REDIS_PORT:-56379}"
BASE="${PENSION_CERT_SERVICES_DIR:-/var/tmp/pension-cert-services}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

install() {
  local missing=()
  for pkg in postgresql redis-server; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
}

start() {
  install
  mkdir -p "$BASE"
  [ "$(id -u)" -eq 0 ] && chown postgres "$BASE"
  if [ ! -d "$BASE/pgdata" ]; then
    as_pg "$PG_BIN/initdb" -D "$BASE/pgdata" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" -l "$BASE/pg.log" -w \
    -o "-p $PG_PORT -h 127.0.0.1 -k $BASE" status >/dev/null 2>&1 ||
    as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" -l "$BASE/pg.log" -w -o "-p $PG_PORT -h 127.0.0.1 -k $BASE" start >/dev/null
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='pension_cert'" |
    grep -q 1 || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE pension_cert" >/dev/null
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 ||
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$BASE" \
      --logfile "$BASE/redis.log" --pidfile "$BASE/redis.pid" >/dev/null
  export PENSION_CERT_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/pension_cert"
  .venv/bin/alembic -c alembic.ini upgrade head >&2
  echo "export PENSION_CERT_DATABASE_URL=$PENSION_CERT_DATABASE_URL"
  echo "export PENSION_CERT_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export PENSION_CERT_WORKER_MODE=celery"
}

stop() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -d "$BASE/pgdata" ] && as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
