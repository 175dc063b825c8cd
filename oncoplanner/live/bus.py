"""Announcing and awaiting change events across worker processes and servers.

PostgreSQL: NOTIFY is transactional, so `pg_notify` inside the change's transaction reaches
every LISTENing process (any worker, any server) only if the change commits. SQLite (`make
run`): a single process, so waiting is a short sleep and the event table is polled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

CHANNEL = "oncoplanner_live"


def announce(event_id: int) -> None:
    """Wake listeners; call inside the transaction that wrote the event."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(event_id)])


class Listener:
    """Waits for an announcement, or for `timeout` seconds, whichever comes first."""

    def __init__(self) -> None:
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        if connection.vendor == "postgresql":
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._connection = psycopg.connect(**params, autocommit=True)
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> None:
        if self._connection is None:
            time.sleep(min(timeout, 1.0))
            return
        for _notify in self._connection.notifies(timeout=timeout, stop_after=1):
            break

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@contextmanager
def listening() -> Iterator[Listener]:
    listener = Listener()
    try:
        yield listener
    finally:
        listener.close()
