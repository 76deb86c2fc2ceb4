# psystock -- `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
export PATH := $(BIN):$(PATH)

# `make run DATA=path/to/prices.csv` runs offline on a CSV in Yahoo's layout.
DATA ?=
SOURCE := $(if $(DATA),$(abspath $(DATA)),yahoo)
# Extra `-P name=value` parameters for `make run`, e.g. ARGS="-P max_evals=50".
ARGS ?=
TRACKING_URI ?= $(or $(MLFLOW_TRACKING_URI),sqlite:///$(CURDIR)/mlflow.db)
UI_PORT ?= 5000

.PHONY: help install run test test-slow bench ui server server-auth lock lock-conda clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv with the locked dependencies and the package

# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set, every step
# process would otherwise compile MLflow, scikit-learn and TensorFlow again.
$(STAMP): requirements-dev.lock pyproject.toml
	@echo "installing the locked environment into $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

run: install ## Run the whole experiment (mlflow run . -e main); DATA=file.csv to run offline
	MLFLOW_TRACKING_URI=$(TRACKING_URI) mlflow run . -e main --env-manager local -P source=$(SOURCE) $(ARGS)

test: install ## Run the tests (unit, data and real `mlflow run` integration tests), about 9 min
	python -m pytest -m "not slow"

test-slow: install ## The slow tests: server outages, PostgreSQL concurrency, Git URL, env builds, Keras/Spark tuning
	python -m pytest -m slow

bench: install ## Time the pipeline, tuning, server logging, cache lookups; prints a table, writes JSON
	python benchmarks/run.py

ui: install ## Open the MLflow UI on the tracking store, on 127.0.0.1 (UI_PORT=5000)
	mlflow ui --backend-store-uri $(TRACKING_URI) --host 127.0.0.1 --port $(UI_PORT)

# Settings of `make server` (environment or make variables): HOST, PORT,
# BACKEND_STORE_URI (postgresql://...), ARTIFACTS_DESTINATION (s3://...),
# SERVER_DIR, WORKERS. See psystock/server.py.
server: install ## Start the team's tracking server (SQL store, proxied artifacts) on 127.0.0.1:5000
	python -m psystock.server

server-auth: install ## The same with MLflow basic-auth; needs MLFLOW_AUTH_ADMIN_PASSWORD
	python -m psystock.server --auth

lock: install ## Re-resolve pyproject.toml into the hash-pinned locks
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o requirements.lock
	uv pip compile pyproject.toml --extra test --extra dev --extra spark --extra server --python-version 3.11 --generate-hashes --quiet -o requirements-dev.lock

# Needs conda channels (network access to conda-forge), so maintainers run it;
# CI does not. conda-lock runs in a throw-away environment via uv.
lock-conda: install ## conda-lock conda.yaml for linux-64 and osx-arm64 into conda-lock.yml
	uv tool run --from "conda-lock==4.0.3" conda-lock lock --file conda.yaml \
		--platform linux-64 --platform osx-arm64 --lockfile conda-lock.yml

clean: ## Remove the local tracking store and the environment
	rm -rf $(VENV) mlruns mlartifacts mlflow.db mlflow-server
