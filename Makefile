# Two commands on a fresh machine with python3 and make: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_WORKERS ?= 2
VAR_DIR ?= $(CURDIR)/var
# The settings (migrate, bootstrap, the tests) read it as the servers do.
export VAR_DIR
SECRET_KEY_FILE := $(VAR_DIR)/secret_key
# The suite in two processes (pytest-xdist), a test file each at a time: most of its
# time is spent waiting on the servers and workers the tests start.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: run test test-pg lint bench install secret-key clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The server and the client (client/, a distribution of its own), both editable, in one
# resolution: the server depends on batchsvc-client, found here rather than on an index.
$(VENV)/.installed: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ./client -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# A secret key generated once for this machine, read by settings when SECRET_KEY is
# not set, from $(VAR_DIR) as they read everything; var/ is ignored by git, and the
# file is readable by its owner only.
$(SECRET_KEY_FILE):
	mkdir -p $(VAR_DIR)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@.tmp
	mv $@.tmp $@

secret-key: $(SECRET_KEY_FILE)

run: install $(SECRET_KEY_FILE)
	mkdir -p $(VAR_DIR)
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) bootstrap --base-url http://$(HOST):$(PORT)
	# Web (gunicorn) and background worker (db_worker), each started again when it
	# dies: supervisord runs the Procfile's lines (see supervisord.conf).
	HOST=$(HOST) PORT=$(PORT) WEB_WORKERS=$(WEB_WORKERS) VAR_DIR=$(VAR_DIR) \
		$(BIN)/supervisord -c supervisord.conf

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install $(SECRET_KEY_FILE)
	mkdir -p var
	$(BIN)/ruff check .
	$(MANAGE) check --fail-level WARNING
	$(MANAGE) makemigrations --check --dry-run
	rm -rf var/test-prometheus
	PROMETHEUS_MULTIPROC_DIR=var/test-prometheus $(BIN)/pytest $(PYTEST_ARGS)

# The suite again on PostgreSQL (DATABASE_URL defaults to the local server).
test-pg: install $(SECRET_KEY_FILE)
	rm -rf var/test-prometheus
	PROMETHEUS_MULTIPROC_DIR=var/test-prometheus \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} $(BIN)/pytest $(PYTEST_ARGS)

# QUICK=1 make bench: the growth curve to 100,000 rows rather than 1,000,000.
bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/batch_get.py
	$(BIN)/python bench/traces.py
	$(BIN)/python bench/logs.py
	$(BIN)/python bench/batches.py
	$(BIN)/python bench/model_rates.py $(if $(QUICK),--quick)
	$(BIN)/python bench/slow_clients.py
	$(BIN)/python bench/scale.py $(if $(QUICK),--quick)
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/client.py
	$(BIN)/python bench/purge.py $(if $(QUICK),--quick)
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/openai_batches.py
	$(BIN)/python bench/failure_groups.py

clean:
	rm -rf $(VENV) var/test.sqlite3*
