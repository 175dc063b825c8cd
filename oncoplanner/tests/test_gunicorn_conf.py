"""The gunicorn configuration: pages on sync workers, the /stream/ server on gthread."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

CONF = str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py")


def test_gunicorn_conf_defaults_to_sync_workers_for_pages(monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKER_CLASS", raising=False)
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    conf = runpy.run_path(CONF)
    assert conf["worker_class"] == "sync"
    assert conf["threads"] == 1


def test_gunicorn_conf_stream_server_uses_threads(monkeypatch):
    # An open stream must hold a thread, not a whole process (docs/OPERATIONS.md).
    monkeypatch.setenv("GUNICORN_WORKER_CLASS", "gthread")
    monkeypatch.setenv("GUNICORN_WORKERS", "1")
    monkeypatch.setenv("GUNICORN_THREADS", "100")
    conf = runpy.run_path(CONF)
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gthread", 1, 100)


def test_gunicorn_conf_rejects_a_non_integer_thread_count(monkeypatch):
    monkeypatch.setenv("GUNICORN_THREADS", "many")
    with pytest.raises(SystemExit, match="GUNICORN_THREADS"):
        runpy.run_path(CONF)
