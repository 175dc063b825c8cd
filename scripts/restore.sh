#!/usr/bin/env bash
# Restore a pg_dump custom-format backup into DATABASE_URL (pg_restore --clean --if-exists, run
# through psql in one transaction).
#   make restore FILE=backups/20260101T020000Z.dump
#   FILE=... DATABASE_URL=postgres://... scripts/restore.sh
# A target that already has tables is overwritten only with RESTORE_CONFIRM=yes: a restore
# replaces every table in the dump, the access log included.
# One transaction (psql --single-transaction, ON_ERROR_STOP): a failed restore leaves the target
# as it was. Tables are dropped and re-created (DROP TABLE), never emptied row by row, so the
# access log's append-only triggers (which refuse DELETE and TRUNCATE) do not get in the way;
# objects that are in the target but not in the dump are left alone.
set -euo pipefail

file=${FILE:-${1:-}}
[ -n "$file" ] || { echo "restore.sh: say which backup: FILE=backups/<timestamp>.dump" >&2; exit 2; }
[ -r "$file" ] || { echo "restore.sh: cannot read $file" >&2; exit 2; }
: "${DATABASE_URL:?DATABASE_URL must point at the PostgreSQL database to restore into}"
case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "restore.sh: DATABASE_URL is not PostgreSQL" >&2; exit 2 ;;
esac

pg_tool() {
  local name=$1 dir
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/$name" ]; then echo "$PG_BINDIR/$name"; return; fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
  done
  command -v "$name" || { echo "restore.sh: $name not found (install postgresql-client)" >&2; exit 1; }
}

tables=$("$(pg_tool psql)" --dbname="$DATABASE_URL" -qAt -v ON_ERROR_STOP=1 \
  -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != 0 ] && [ "${RESTORE_CONFIRM:-}" != yes ]; then
  echo "restore.sh: the target database has $tables tables; RESTORE_CONFIRM=yes to replace them" >&2
  exit 3
fi

# The partitioned access log and its list-view index are dropped whole first (their partitions
# with them): pg_restore --clean would drop each partition's inherited constraints one by one,
# which PostgreSQL refuses. The DROP and the restore run in one psql transaction, so a failure still leaves the
# target as it was.
{
  echo "DROP TABLE IF EXISTS public.audit_accesslog CASCADE;"
  echo "DROP TABLE IF EXISTS public.audit_accesslogpatient CASCADE;"
  "$(pg_tool pg_restore)" --clean --if-exists --no-owner --no-acl --file=- "$file"
} | "$(pg_tool psql)" --dbname="$DATABASE_URL" --single-transaction -v ON_ERROR_STOP=1 -qX >/dev/null
echo "restore.sh: restored $file" >&2
