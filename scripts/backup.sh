#!/usr/bin/env bash
# Back up the database at DATABASE_URL: pg_dump custom format into backups/<UTC timestamp>.dump.
#   DATABASE_URL=postgres://... scripts/backup.sh            (or: make backup)
#   BACKUP_DIR=/elsewhere scripts/backup.sh                   (default: ./backups)
# Uses PG_BINDIR's pg_dump when set (scripts/with-postgres.sh exports it; it must be at least
# the server's version), else the newest installed /usr/lib/postgresql/*/bin, else PATH.
# Prints the path of the dump on stdout. The dump holds PHI: keep it encrypted and off this host.
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL must point at the PostgreSQL database to back up}"
case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "backup.sh: DATABASE_URL is not PostgreSQL (SQLite: copy db.sqlite3 instead)" >&2; exit 2 ;;
esac

pg_tool() {
  local name=$1 dir
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/$name" ]; then echo "$PG_BINDIR/$name"; return; fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
  done
  command -v "$name" || { echo "backup.sh: $name not found (install postgresql-client)" >&2; exit 1; }
}

dir=${BACKUP_DIR:-backups}
mkdir -p "$dir"
chmod 700 "$dir"
file="$dir/$(date -u +%Y%m%dT%H%M%SZ).dump"
tmp="$file.partial"
# --no-owner/--no-acl: restorable by another role (a restore drill, a new server).
# Written to .partial first, so an interrupted dump never looks like a good backup.
umask 077
"$(pg_tool pg_dump)" --format=custom --no-owner --no-acl --file="$tmp" --dbname="$DATABASE_URL"
mv "$tmp" "$file"
echo "backup.sh: wrote $file ($(du -h "$file" | cut -f1))" >&2
echo "$file"
