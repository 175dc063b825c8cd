"""Audit test helpers: a way to tamper like a DBA would."""

from __future__ import annotations

from django.db import connection

# The postgres_only skip hook lives in the root conftest.py (used by every app).


def tamper(sql: str, params: list[object] | None = None) -> None:
    """Run raw SQL against the log as someone with full rights on the table would.

    On PostgreSQL that means switching the append-only trigger off first (as the table owner
    can); the ALTER TABLE is inside the test's transaction and is rolled back with it.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_accesslog DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_accesslog ENABLE TRIGGER USER")
