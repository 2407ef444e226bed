#!/usr/bin/env bash
# Scale-out set-up on one machine: PostgreSQL and Redis from Debian packages, on loopback, data under
# $PENSION_CERT_SERVICES_DIR (default /var/tmp/pension-cert-services). Keeps the settings to export in its file
# env there (0600: the URLs carry the passwords) and prints the line that reads it, never a password; then run
# `pension-cert serve` and any number of `celery -A service.adapters.workers.tasks worker` (or `pension-cert worker`)
# processes.
#   exports=$(bash scripts/services.sh start) && eval "$exports"   # install if needed, start, migrate, export
#   (a bare `eval "$(bash scripts/services.sh start)"` succeeds even when the script stops: nothing exported)
#   bash scripts/services.sh stop
# Loopback is shared by every account of the machine, so neither server takes a connection without its password:
# each is random, made on the first start and kept in the services folder (mode 0700, the files 0600; the
# exported URLs carry them). PostgreSQL's own socket, in that folder, stays open to its owner (and root) only.
# The test suite does not need this: it starts its own throwaway servers from the same binaries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_PORT="${PENSION_CERT_PG_PORT:-55432}"
REDIS_PORT="${PENSION_CERT_REDIS_PORT:-56379}"
BASE="${PENSION_CERT_SERVICES_DIR:-/var/tmp/pension-cert-services}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
# PostgreSQL refuses to run as root: as root it runs as the postgres system user, which then owns the folder.
OWNER="$(id -un)"
[ "$(id -u)" -eq 0 ] && OWNER=postgres

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
die() { echo "services: $*" >&2; exit 1; }
port_taken() {  # port_taken PORT: a program listens on 127.0.0.1:PORT (a connect, nothing sent: never hangs)
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

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

private_base() {  # the services folder, this set-up's own: never a symlink or another account's folder
  # /var/tmp is writable by every account: a name planted there in advance (a symlink to /etc, a folder of
  # the attacker's) would otherwise get chowned to postgres, or receive the data and the passwords.
  if [ ! -e "$BASE" ] && [ ! -L "$BASE" ]; then
    mkdir -p "$(dirname "$BASE")"
    # mkdir, not mkdir -p: it fails on a name planted between the test above and now.
    (umask 077 && mkdir "$BASE") || die "$BASE appeared while it was being made: refusing it"
    if [ "$(id -u)" -eq 0 ]; then chown -h postgres "$BASE"; fi
  fi
  [ -L "$BASE" ] && die "$BASE is a symlink: refusing it (remove it, or set PENSION_CERT_SERVICES_DIR)"
  [ -d "$BASE" ] || die "$BASE is not a folder"
  local owner
  owner="$(stat -c %U "$BASE")"
  [ "$owner" = "$OWNER" ] || die "$BASE belongs to $owner, not $OWNER: refusing it (set PENSION_CERT_SERVICES_DIR)"
  chmod 700 "$BASE"
}

secret() {  # secret NAME: the password kept in $BASE/NAME.password (0600), made on the first call
  local file="$BASE/$1.password"
  if [ ! -s "$file" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

start_postgres() {
  local password="$1" opts="-p $PG_PORT -h 127.0.0.1 -k $BASE"
  if [ ! -d "$BASE/pgdata" ]; then
    as_pg "$PG_BIN/initdb" -D "$BASE/pgdata" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
  fi
  # Rewritten at every start: also closes a folder made by an older version of this script (trust on 127.0.0.1).
  # The socket's folder is $BASE (0700), so `local ... trust` admits its owner and root only.
  printf '%s\n' "local all all trust" "host all all 127.0.0.1/32 scram-sha-256" "host all all ::1/128 scram-sha-256" |
    as_pg tee "$BASE/pgdata/pg_hba.conf" >/dev/null
  if as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" reload >/dev/null
  else
    port_taken "$PG_PORT" && die "127.0.0.1:$PG_PORT is taken by another program: set PENSION_CERT_PG_PORT to a" \
      "free port (and use the same value for every later start and stop)"
    as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" -l "$BASE/pg.log" -w -o "$opts" start >/dev/null 2>&1 ||
      die "PostgreSQL did not start on 127.0.0.1:$PG_PORT: $(grep -E 'FATAL|PANIC' "$BASE/pg.log" | tail -n 1)" \
        "(log: $BASE/pg.log; another port: PENSION_CERT_PG_PORT)"
  fi
  # Through the socket (no password yet on a new cluster); the password itself on stdin, never in argv.
  # scram-sha-256 named: PostgreSQL 13 and older hash a new password with md5 by default, which pg_hba refuses.
  printf "SET password_encryption = 'scram-sha-256'; ALTER USER postgres PASSWORD '%s';\n" "$password" |
    as_pg psql -h "$BASE" -p "$PG_PORT" -U postgres -qX >/dev/null
  as_pg psql -h "$BASE" -p "$PG_PORT" -U postgres -tAXc "SELECT 1 FROM pg_database WHERE datname='pension_cert'" |
    grep -q 1 || as_pg psql -h "$BASE" -p "$PG_PORT" -U postgres -qXc "CREATE DATABASE pension_cert" >/dev/null
}

redis_pid() {  # the pidfile in the private folder names a live redis-server of this account (one this set-up started)
  local pid
  pid="$(cat "$BASE/redis.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = "$(id -u)" ] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]] || return 1
  echo "$pid"
}

listens_on() {  # listens_on PID PORT: the process itself holds the listening socket of 127.0.0.1:PORT
  # /proc/PID/net/tcp lists the sockets of its network namespace (local address in hex, state 0A = LISTEN, the
  # inode in column 10); the process holds one of them when a descriptor of its own is that socket. No `ss`.
  local pid="$1" port inode fd
  port="$(printf ':%04X' "$2")"
  for inode in $(awk -v p="$port" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
    "/proc/$pid/net/tcp" 2>/dev/null); do
    for fd in "/proc/$pid/fd/"*; do
      [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ] && return 0
    done
  done
  return 1
}

our_redis() {  # this set-up's redis-server, and it is what listens on $REDIS_PORT (never another program there)
  local pid
  pid="$(redis_pid)" && listens_on "$pid" "$REDIS_PORT"
}

start_redis() {
  local password="$1"
  # The password in a 0600 file, not on the command line (every account can read the process list).
  (umask 077 && printf '%s\n' "port $REDIS_PORT" "bind 127.0.0.1" "requirepass $password" "dir $BASE" \
    "logfile $BASE/redis.log" "pidfile $BASE/redis.pid" "daemonize yes" >"$BASE/redis.conf")
  local answer="" i
  if our_redis; then
    # `timeout`: never wait forever on a server that does not answer.
    if [ "$(timeout 3 redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
      # Ours, answering without a password (started by an older version of this script): give it one.
      printf 'CONFIG SET requirepass %s\n' "$password" | timeout 3 redis-cli -p "$REDIS_PORT" >/dev/null  # not argv
    fi
  elif port_taken "$REDIS_PORT"; then
    # Not this set-up's Redis (another account's, or not Redis at all): never give it the password or the jobs.
    die "127.0.0.1:$REDIS_PORT is taken by another program: set PENSION_CERT_REDIS_PORT to a free port (and use" \
      "the same value for every later start and stop)"
  elif redis_pid >/dev/null; then
    die "this set-up's Redis runs on another port than 127.0.0.1:$REDIS_PORT (PENSION_CERT_REDIS_PORT changed):" \
      "run \`bash scripts/services.sh stop\` first"
  else
    redis-server "$BASE/redis.conf" >/dev/null
    # Up to 5 s for the server to hold the port: until then the port may be another program's (a race).
    for ((i = 0; i < 50; i++)); do
      our_redis && break
      sleep 0.1
    done
    our_redis || die "Redis did not start on 127.0.0.1:$REDIS_PORT (log: $BASE/redis.log; another port:" \
      "PENSION_CERT_REDIS_PORT)"
  fi
  # The server on the port is ours (its process holds the socket): only now is the password sent.
  for ((i = 0; i < 50; i++)); do
    answer="$(REDISCLI_AUTH="$password" timeout 3 redis-cli --no-auth-warning -p "$REDIS_PORT" ping 2>&1 || true)"
    [ "$answer" = PONG ] && return 0
    sleep 0.1
  done
  die "Redis on 127.0.0.1:$REDIS_PORT does not answer with this set-up's password (${answer:-no answer})" \
    "(log: $BASE/redis.log)"
}

start() {
  install
  private_base
  local pg_password redis_password
  pg_password="$(secret postgres)"
  redis_password="$(secret redis)"
  start_postgres "$pg_password"
  start_redis "$redis_password"
  export PENSION_CERT_DATABASE_URL="postgresql+psycopg://postgres:$pg_password@127.0.0.1:$PG_PORT/pension_cert"
  .venv/bin/alembic -c alembic.ini upgrade head >&2
  # The URLs carry the passwords: they go in a 0600 file of the private folder, and what is printed for `eval`
  # reads that file, so a terminal, its scroll-back or a CI log never holds a password (replaced whole: mv).
  (umask 077 && printf 'export %s=%q\n' PENSION_CERT_DATABASE_URL "$PENSION_CERT_DATABASE_URL" \
    PENSION_CERT_BROKER_URL "redis://:$redis_password@127.0.0.1:$REDIS_PORT/0" \
    PENSION_CERT_WORKER_MODE celery >"$BASE/env.tmp") && mv -f "$BASE/env.tmp" "$BASE/env"
  echo "services: the settings to export (the URLs carry the passwords) are in $BASE/env (0600):" \
    "in another shell, \`. $BASE/env\`" >&2
  printf '. %q\n' "$BASE/env"
}

stop() {
  local pid i
  # This set-up's Redis by its process, whatever port it is on; nothing is sent to the port (another program's?).
  if pid="$(redis_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if [ -d "$BASE/pgdata" ] && [ ! -L "$BASE" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$BASE/pgdata" -m fast stop >/dev/null 2>&1 || true
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
