#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a throwaway PostgreSQL cluster, then removes it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/oncoplanner-pg.XXXXXX)
trap '"$here/pg.sh" stop "$dir"' EXIT
DATABASE_URL=$("$here/pg.sh" start "$dir")
export DATABASE_URL PG_SOCKET_DIR="$dir/socket" PG_PORT="$(cat "$dir/port")" PG_BINDIR="$("$here/pg.sh" bindir)"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PG_PORT" >&2
"$@"
