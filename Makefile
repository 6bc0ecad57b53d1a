# Vantage: `make run` serves the app, `make test` runs the whole suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
# The classifier's model, exported from its pretrained weights when missing.
MODEL_FILE ?= $(or $(CLASSIFIER_MODEL_PATH),var/models/efficientnet-lite0.onnx)
# apt-get needs root: sudo when this is not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.DEFAULT_GOAL := help
.PHONY: help install run test lint format bench lock clean browser nginx

help:
	@echo "make run    serve the app with a worker and beat on http://$(HOST):$(PORT)"
	@echo "make test   install what is needed and run the whole test suite"
	@echo "make lint   ruff, mypy and a check for missing migrations"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make lock   re-pin requirements*.txt from requirements*.in"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-model.txt \
		requirements-model-nodeps.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt \
		-r requirements-dev.txt -r requirements-model.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-model-nodeps.txt
	touch $@

install: $(VENV)/.installed

$(MODEL_FILE): export DJANGO_DEBUG ?= true
$(MODEL_FILE): | $(VENV)/.installed
	$(MANAGE) classifier_export_model --output $@

# The embedded default: SQLite, in-process cache and a filesystem broker under
# var/, one web process (its cache is in-process), a worker and beat.
run: export DJANGO_DEBUG ?= true
run: export GUNICORN_BIND ?= $(HOST):$(PORT)
run: install $(MODEL_FILE)
	$(MANAGE) migrate --no-input
	$(MANAGE) collectstatic --no-input --verbosity 0
	$(MANAGE) seed_demo 2>/dev/null | grep -v '^{'
	rm -rf var/prometheus
	@echo
	@echo "  Vantage is starting on http://$(HOST):$(PORT)/"
	@echo "  API docs: http://$(HOST):$(PORT)/api/docs/   health: http://$(HOST):$(PORT)/health"
	@echo "  Ctrl-C stops the web server, the worker and beat."
	@echo
	$(BIN)/honcho start --procfile Procfile

# The browser tests drive Debian's Chromium; install it when the machine has none.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "Installing Chromium (Debian's package) for the browser tests"; \
		$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; } || \
		echo "Chromium could not be installed: the browser tests will say so"; }

# The slow-client tests put Debian's nginx in front of gunicorn, with the
# configuration under deploy/nginx/; install it when the machine has none.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
		echo "Installing nginx (Debian's package) for the slow-client tests"; \
		$(SUDO) apt-get install -y -q nginx >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q nginx >/dev/null; } || \
		echo "nginx could not be installed: the slow-client tests will say so"; }

test: install $(MODEL_FILE) browser nginx
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=config.settings_test $(MANAGE) makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python -m bench

lock: install
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements.txt requirements.in
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements-dev.txt requirements-dev.in

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
