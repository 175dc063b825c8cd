# OncoPlanner: `make run` to try it, `make test` to run the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := run
PYTHON_BIN := $(shell scripts/find-python)
ifeq ($(PYTHON_BIN),)
$(error No Python 3.12+ found: Django 6.1 needs Python 3.12 or 3.13. Install one or set PYTHON=/path/to/python3.12)
endif
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: api-fuzz run test lint test-sqlite test-postgres test-browser test-browser-postgres venv venv-dev clean security-report \
	backup restore bench bench-streams load-test

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

run: venv
	DJANGO_DEBUG=true $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=true $(PY) manage.py createcachetable
	DJANGO_DEBUG=true $(PY) manage.py seed_demo --if-empty
	@DJANGO_DEBUG=true $(PY) manage.py demo_logins --url http://$(HOST):$(PORT)/
	PY=$(PY) HOST=$(HOST) PORT=$(PORT) scripts/run-dev.sh

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check --settings=oncoplanner.settings_test

test-sqlite: venv-dev
	$(VENV)/bin/pytest -n 2 -q

# CI=true: the same suite against a throwaway PostgreSQL, then the browser tests on SQLite and on PostgreSQL.
test-postgres: venv-dev
	scripts/with-postgres.sh $(VENV)/bin/pytest -n 2 -q
	scripts/with-postgres.sh $(VENV)/bin/python scripts/live_two_workers.py

test-browser: venv-dev
	scripts/browser-setup.sh
	$(VENV)/bin/pytest -q -p no:xdist tests_browser

# The browser tests again on PostgreSQL, the production database: SQLite skips row locks,
# so a write outside a transaction passed there and answered 500 in production.
test-browser-postgres: venv-dev
	scripts/browser-setup.sh
	scripts/with-postgres.sh $(VENV)/bin/pytest -q -p no:xdist tests_browser

test: lint test-sqlite
ifeq ($(CI),true)
	$(MAKE) test-postgres
	$(MAKE) test-browser
	$(MAKE) test-browser-postgres
endif

# SECURITY.md figures at a glance: permission matrix, URL walk, IDOR probes, access log.
security-report: venv-dev
	scripts/security-report.sh

# Operations (docs/OPERATIONS.md): pg_dump of DATABASE_URL into backups/, and its restore.
backup:
	scripts/backup.sh

restore:
	@test -n "$(FILE)" || { echo "make restore FILE=backups/<timestamp>.dump" >&2; exit 2; }
	FILE="$(FILE)" scripts/restore.sh

# Benchmarks (docs/PERFORMANCE.md): minutes, throwaway PostgreSQL + gunicorn, not part of `make test`.
bench: venv-dev
	$(PY) scripts/bench.py $(BENCH_ARGS)

load-test: venv-dev
	$(PY) scripts/bench.py --held-only

# SECURITY.md figure 18: PostgreSQL and a gunicorn worker killed under write load (about a minute).
fault-test: venv-dev
	$(PY) scripts/fault_test.py $(FAULT_ARGS)

# Issue 6: page throughput with 0 and 20 open live streams (docs/PERFORMANCE.md).
bench-streams: venv-dev
	$(PY) scripts/bench_streams.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3

# SECURITY.md figure 7: schemathesis against /api/v1/openapi.json as clinician and patient.
api-fuzz: venv-dev
	scripts/api-fuzz.sh
