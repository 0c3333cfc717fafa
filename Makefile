# Arena: `make run` starts the site with a demo campaign; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000
# The embedded default: SQLite, tasks in-process, no external service.
RUN_ENV := DEBUG=true
# The distributed pass uses the real PostgreSQL and Redis on 127.0.0.1 (scripts/services.sh starts them).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/arena
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# Both passes run on every core, the integration tests too, except the one that restarts the shared
# PostgreSQL.
XDIST ?= -n 2
DISTRIBUTED := DATABASE_URL=$(TEST_DATABASE_URL) ARENA_TEST_REDIS_URL=$(TEST_REDIS_URL)
# The one test that stops and starts the shared PostgreSQL runs alone, after the other integration tests
# (which use private servers, free ports and a Redis database per process) have run on every core.
SHARED_PG_RESTART := tests/integration/test_faults.py::test_a_postgres_restart_gives_a_clear_503_and_the_site_recovers_by_itself

.PHONY: run test lint bench services clean

$(VENV)/.run-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	touch $@

# torch is pinned to the CPU build first so that the gpu extra does not pull a CUDA build.
$(VENV)/.test-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev,gpu]'
	touch $(VENV)/.run-installed $@

run: $(VENV)/.run-installed
	$(RUN_ENV) $(PY) manage.py migrate --noinput -v 0
	$(RUN_ENV) $(PY) manage.py load_demo
	$(RUN_ENV) $(PY) manage.py ensure_admin
	@echo
	@echo "  Arena is starting on http://$(HOST):$(PORT)/"
	@echo "  Vote in the demo:   http://$(HOST):$(PORT)/c/demo/"
	@echo "  Leaderboard:        http://$(HOST):$(PORT)/c/demo/leaderboard/"
	@echo "  Admin:              http://$(HOST):$(PORT)/admin/  (user: admin)"
	@echo
	$(RUN_ENV) $(VENV)/bin/uvicorn arena.asgi:application --host $(HOST) --port $(PORT)

services:
	bash scripts/services.sh

# Every behaviour test runs twice (tests/modes.py): the embedded pass on a SQLite file with tasks
# in-process, then the distributed pass on PostgreSQL and Redis with real servers and workers.
test: $(VENV)/.test-installed services
	@echo "== import contracts (docs/architecture.md) =="
	$(VENV)/bin/lint-imports --no-cache
	@echo "== embedded pass: SQLite, tasks in-process, in-memory channel layer =="
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)
	@echo "== distributed pass: PostgreSQL, Redis, real servers and workers =="
	$(DISTRIBUTED) $(PY) -m pytest $(XDIST) --ignore=tests/integration $(PYTEST_ARGS)
	$(DISTRIBUTED) $(PY) -m pytest $(XDIST) tests/integration --deselect $(SHARED_PG_RESTART) $(PYTEST_ARGS) || [ $$? = 5 ]
	$(DISTRIBUTED) $(PY) -m pytest $(SHARED_PG_RESTART) $(PYTEST_ARGS) || [ $$? = 5 ]  # 5: PYTEST_ARGS chose none

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(VENV)/.test-installed services
	$(PY) bench/ratings.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
