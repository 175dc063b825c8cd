#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks.
#   scripts/pg.sh start DIR   -> initdb + start on a free loopback port; prints DATABASE_URL
#   scripts/pg.sh stop DIR    -> stops it and removes DIR
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user
# (runuser). It gets its own socket directory and a free port: 5432 and 55432 may be taken.
set -euo pipefail

find_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

ensure_installed() {
  find_bindir >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "pg.sh: installing Debian's postgresql package" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  find_bindir >/dev/null || { echo "pg.sh: PostgreSQL server binaries (initdb) not found; install Debian's postgresql package" >&2; exit 1; }
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir=$1
  ensure_installed
  local bindir; bindir=$(find_bindir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  mkdir -p "$dir/socket"; [ "$(id -u)" = 0 ] && chown postgres: "$dir/socket"
  local port; port=$(free_port)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
  echo "$port" > "$dir/port"
  as_owner "$bindir/psql" -h "$dir/socket" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE oncoplanner LOGIN SUPERUSER PASSWORD 'oncoplanner'" \
    -c "CREATE DATABASE oncoplanner OWNER oncoplanner" >/dev/null
  echo "postgres://oncoplanner:oncoplanner@127.0.0.1:$port/oncoplanner"
}

stop() {
  local dir=$1
  [ -d "$dir/data" ] || return 0
  local bindir; bindir=$(find_bindir)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:?directory}" ;;
  stop) stop "${2:?directory}" ;;
  bindir) ensure_installed; find_bindir ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
