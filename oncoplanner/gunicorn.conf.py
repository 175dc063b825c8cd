"""gunicorn settings for production: `gunicorn -c oncoplanner/gunicorn.conf.py oncoplanner.wsgi`.

Every value comes from the environment (docs/OPERATIONS.md lists them). Pages: sync workers
(the default): each request is one short transaction, the database is the bottleneck, and a
worker that dies mid-request takes only its own uncommitted transaction with it. Live streams
(/stream/): a second gunicorn with GUNICORN_WORKER_CLASS=gthread and many GUNICORN_THREADS, so
that an open stream holds a thread, not a process; a sync worker would be killed by the
timeout below while it holds a stream, and would answer no page meanwhile.
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, not {raw!r}") from None


wsgi_app = "oncoplanner.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = _int("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = _int("GUNICORN_THREADS", 1)
# gthread: a worker accepts up to this many connections (open streams plus kept-alive ones)
# and queues them on its threads; size GUNICORN_THREADS, not this, to the streams you expect.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
# A request that takes longer than this is killed (its transaction rolls back). Keep it above
# DB_STATEMENT_TIMEOUT_MS so that a slow query is answered 503 by the app first.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then (bounded memory growth); jitter so they do not all restart at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# Loading the app in the master before forking shares memory and fails start-up loudly on a bad
# setting; database connections are opened lazily in each worker, never shared across a fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() in {"1", "true", "yes", "on"}

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# %(M)s: request time in milliseconds; no query string (it may carry search terms that are PHI)
# and no referer; the user is identified in the access log table, not here.
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms pid=%(p)s'
)
# Behind a TLS-terminating proxy on the same host: trust X-Forwarded-* only from it.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips
