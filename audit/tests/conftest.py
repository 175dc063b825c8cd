"""Audit test helpers: the postgres_only marker, and a way to tamper like a DBA would."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def _skip_postgres_only_elsewhere(request: pytest.FixtureRequest) -> None:
    # Skip only when not on PostgreSQL: CI runs the suite on PostgreSQL too (DATABASE_URL).
    if request.node.get_closest_marker("postgres_only") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


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
