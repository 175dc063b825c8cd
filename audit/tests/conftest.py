"""Audit test helpers: a way to tamper like a DBA would."""

from __future__ import annotations

from django.db import connection

# The postgres_only skip hook lives in the root conftest.py (used by every app).


def tamper(sql: str, params: list[object] | None = None) -> None:
    """Run raw SQL against the log as someone with full rights on the table would.

    On PostgreSQL that means switching the append-only triggers off first, on the log, on
    the list-view index and on each monthly partition of both (as the table owner can); the ALTER
    TABLEs are inside the test's transaction and are rolled back with it.
    """
    with connection.cursor() as cursor:
        tables = _log_tables(cursor) if connection.vendor == "postgresql" else []
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _log_tables(cursor) -> list[str]:
    """The log and its monthly partitions (each partition refuses TRUNCATE on its own), and
    the list-view index AccessLogPatient and its partitions, append-only too but outside the
    hash chain."""
    tables = []
    for parent in ("audit_accesslog", "audit_accesslogpatient"):
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            [parent],
        )
        tables += [parent, *(name for (name,) in cursor.fetchall())]
    return tables
