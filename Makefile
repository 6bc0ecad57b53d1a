# Vantage: `make run` serves the app, `make test` runs the whole suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
# Making the classifier's model again needs PyTorch: a virtualenv of its own,
# so that neither `make run` nor `make test` ever installs it.
MODEL_VENV := .venv-model
PIP := --quiet --disable-pip-version-check
# apt-get needs root: sudo when this is not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.DEFAULT_GOAL := help
.PHONY: help install install-dev run test lint format bench lock clean test-tools model install-report

help:
	@echo "make run    serve the app with a worker and beat on http://$(HOST):$(PORT)"
	@echo "make test   install what is needed and run the whole test suite"
	@echo "make lint   ruff, mypy and a check for missing migrations"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make model  make the classifier's model again from its weights and check it is the shipped one"
	@echo "make lock   re-pin requirements*.txt from requirements*.in"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What serving needs: requirements.txt alone (the model is shipped, run by onnxruntime).
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install $(PIP) -r requirements.txt
	touch $@

# The test and lint tools on top; the sample photos' package without its dependencies.
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-dev-nodeps.txt
	$(BIN)/pip install $(PIP) -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install $(PIP) --no-deps -r requirements-dev-nodeps.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# A local .env with debug on and a secret of its own, written once and never
# committed, so that `manage.py` commands work as the README writes them.
.env:
	@printf '%s\n' "# Written by 'make run' for this checkout; never commit it." \
		"DJANGO_DEBUG=true" \
		"DJANGO_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env (debug on, a new secret key) for manage.py commands in this checkout."

# The embedded default: SQLite, in-process cache and a filesystem broker under
# var/, one web process (its cache is in-process), a worker and beat.
run: export DJANGO_DEBUG ?= true
run: export GUNICORN_BIND ?= $(HOST):$(PORT)
# The processes' output passes through honcho, so no terminal is seen: say it.
run: export LOG_FORMAT ?= console
run: install .env
	$(MANAGE) migrate --no-input
	$(MANAGE) collectstatic --no-input --verbosity 0
	LOG_LEVEL=WARNING $(MANAGE) seed_demo
	rm -rf var/prometheus
	@echo
	@echo "  Vantage is starting on http://$(HOST):$(PORT)/"
	@echo "  API docs: http://$(HOST):$(PORT)/api/docs/   health: http://$(HOST):$(PORT)/health"
	@echo "  Ctrl-C stops the web server, the worker and beat."
	@echo
	$(BIN)/honcho start --procfile Procfile

# Debian's packages the tests drive, installed when missing: Chromium for the
# browser tests, nginx in front of gunicorn for the slow-client tests,
# promtool (package prometheus) for the alert rules' tests, kubectl (package
# kubernetes-client) to render the Kubernetes kustomizations, redis-sentinel
# for the failover test, pgbouncer for the transaction-pooling test, and ip
# (package iproute2) for the multi-host test's network namespaces; wrk drives `make bench`.
TEST_TOOLS := chromium:chromium nginx:nginx promtool:prometheus kubectl:kubernetes-client \
	redis-sentinel:redis-sentinel pgbouncer:pgbouncer ip:iproute2 wrk:wrk
test-tools:
	@missing=""; for pair in $(TEST_TOOLS); do \
		tool=$${pair%%:*}; package=$${pair#*:}; \
		command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian's$$missing for the tests"; \
		$(SUDO) apt-get install -y -q $$missing >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; } || \
		echo "Could not install$$missing: the tests that need them will say so"; \
	fi

test: install-dev test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=config.settings_test $(MANAGE) makemigrations --check --dry-run

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install-dev test-tools
	DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python -m bench

lock: install-dev
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements.txt requirements.in
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements-dev.txt requirements-dev.in

# PyTorch, the exporter and the pretrained weights in their own virtualenv; the
# model made there must be byte for byte the one in classifier/weights/.
$(MODEL_VENV)/.installed: requirements.txt requirements-model.txt requirements-model-nodeps.txt
	$(PYTHON) -m venv $(MODEL_VENV)
	$(MODEL_VENV)/bin/pip install $(PIP) -r requirements.txt -r requirements-model.txt
	$(MODEL_VENV)/bin/pip install $(PIP) --no-deps -r requirements-model-nodeps.txt
	touch $@

model: export DJANGO_DEBUG ?= true
model: $(MODEL_VENV)/.installed
	$(MODEL_VENV)/bin/python manage.py classifier_export_model --check

# What `make run` and `make test` install on a machine with only the public
# package index: resolved with this machine's pip configuration switched off.
install-report: | $(BIN)/python
	$(BIN)/python .ci/install_report.py

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
