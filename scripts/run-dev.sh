#!/usr/bin/env bash
# `make run`'s server: the development web server plus what production runs beside it,
# the task worker (notifications) and the access-log sealer, all stopped together.
set -euo pipefail
py=${PY:-.venv/bin/python}
export DJANGO_DEBUG=true
"$py" manage.py db_worker --interval 1 &
worker=$!
( while sleep 60; do "$py" manage.py seal_access_log >/dev/null 2>&1 || true; done ) &
sealer=$!
trap 'kill "$worker" "$sealer" 2>/dev/null || true' EXIT INT TERM
"$py" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
