"""Databases of a test's own on the PostgreSQL test cluster, outside the test transaction,
for what a transaction cannot show: pg_dump and pg_restore (which see committed rows only), a
migration run from an earlier state, `manage.py` commands in a process of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def database_url(name: str) -> str:
    """The test cluster's URL for database `name`, as the test settings reach the cluster."""
    db = settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    )


def manage(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ARGS` against the database at `url`, in a process of its own."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "oncoplanner.settings_test"}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@contextmanager
def scratch_databases(*prefixes: str) -> Iterator[list[str]]:
    """Empty databases named PREFIX_<random>, one per prefix; yields their URLs and drops them
    afterwards. Skips the test on SQLite (call it from the fixture: a module-scoped fixture
    runs before the postgres_only marker's skip)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    suffix = uuid.uuid4().hex[:8]
    names = [f"{prefix}_{suffix}" for prefix in prefixes]
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield [database_url(name) for name in names]
    finally:
        with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
