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

# `make run` reads the bars from the price store (the committed BTC-USD bars seed it; any other
# range is downloaded from Yahoo once and kept); `make run DATA=path/to/prices.csv` reads a CSV.
DATA ?=
SOURCE := $(if $(DATA),$(abspath $(DATA)),store)
# Extra `-P name=value` parameters for `make run`, e.g. ARGS="-P max_evals=50".
ARGS ?=
# The MLflow experiment `make run` logs into (created if it does not exist).
EXPERIMENT ?= psystock
TRACKING_URI ?= $(or $(MLFLOW_TRACKING_URI),sqlite:///$(CURDIR)/mlflow.db)
UI_PORT ?= 5000

.PHONY: help install run warm cold test test-unit test-slow durations lint format bench ui server server-auth lock lock-conda clean

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

# A new or older SQLite store is made ready once, under a lock, before anything runs on it
# (psystock/tracking_store.py): two first runs at once would both create its tables.
# psystock-mlflow is `mlflow`, started in the warm server when `make warm` runs one.
run: install ## Run the whole experiment (mlflow run . -e main) into EXPERIMENT, offline by default; DATA=file.csv
	python -m psystock.tracking_store $(TRACKING_URI) $(EXPERIMENT)
	MLFLOW_TRACKING_URI=$(TRACKING_URI) psystock-mlflow run . -e main --env-manager local \
		--experiment-name $(EXPERIMENT) -P source=$(SOURCE) $(ARGS)

# A server in the background that every step of this checkout hands itself over to: a step run
# alone, or main itself, then starts forked from it instead of importing MLflow, pandas and
# scikit-learn anew (psystock/warm.py). It ends itself after PSYSTOCK_WARM_IDLE minutes (30).
warm: install ## Keep the steps' imports warm in the background: steps, make run and psystock-mlflow then start in a fraction of a second
	python -m psystock.warm start

cold: install ## Stop the warm server: steps start as new interpreters again
	python -m psystock.warm stop

# Two workers (pytest-xdist), each test file on one of them so that its module fixtures are
# made once: the integration tests wait on step processes, so even two cores finish sooner.
# The longest files go first (tests/durations.json, `make durations`). An integration file is
# a scenario (a pipeline, then its re-run), so it keeps its order; the unit tests run in random
# order in `make test-unit` (pytest-randomly prints its seed: replay a failure with
# `python -m pytest tests/unit tests/data --randomly-seed=N`).
XDIST := -n 2 --dist loadfile -p no:randomly

test: install ## Run the tests: unit, real data, and real `mlflow run` integration tests (about 6 min here)
	python -m pytest -m "not slow" $(XDIST)

test-unit: install ## The tests that start no process, in one process and in random order (about 2 min)
	python -m pytest tests/unit tests/data

test-slow: install ## The slow tests: server outages, PostgreSQL concurrency, Git URL, env builds, Keras/Spark tuning
	python -m pytest -m slow $(XDIST)

durations: install ## Run make test and make test-slow, storing their tests' durations: the workers take the longest files first
	python -m pytest -m "not slow" $(XDIST) --store-durations
	python -m pytest -m slow $(XDIST) --store-durations

lint: install ## ruff (lint and format check) and mypy: no findings allowed
	ruff check .
	ruff format --check .
	mypy

format: install ## Let ruff format the code and fix what it can
	ruff format .
	ruff check --fix .

bench: install ## Time the pipeline, tuning, server logging, cache lookups, universes; prints a table, writes JSON
	python -m benchmarks.run

# `mlflow ui` as `make server` runs MLflow's server (psystock/server.py): its address checked,
# without its GenAI job runners, its web workers on an event loop without Nagle's delay.
ui: install ## Open the MLflow UI on the tracking store, on 127.0.0.1 (UI_PORT=5000)
	python -m psystock.tracking_store $(TRACKING_URI)
	HOST=127.0.0.1 PORT=$(UI_PORT) python -m psystock.server --ui $(TRACKING_URI)

# Settings of `make server` (environment or make variables): HOST, PORT,
# BACKEND_STORE_URI (postgresql://...), ARTIFACTS_DESTINATION (s3://...),
# SERVER_DIR, WORKERS. See docs/team-server.md.
server: install ## Start the team's tracking server (SQL store, proxied artifacts) on 127.0.0.1:5000
	python -m psystock.server

server-auth: install ## The same with MLflow basic-auth; needs MLFLOW_AUTH_ADMIN_PASSWORD
	python -m psystock.server --auth

lock: install ## Re-resolve pyproject.toml into the hash-pinned locks, and conda.yaml from them
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o requirements.lock
	uv pip compile pyproject.toml --extra test --extra dev --extra spark --extra server --python-version 3.11 --generate-hashes --quiet -o requirements-dev.lock
	python -m tools.conda_env --write

# Needs the conda channels (network access to conda-forge), so maintainers run it; CI
# checks offline, with conda-lock's own parser, that it can read conda.yaml.
lock-conda: install ## conda-lock conda.yaml for linux-64 and osx-arm64 into conda-lock.yml
	conda-lock lock --file conda.yaml --platform linux-64 --platform osx-arm64 --lockfile conda-lock.yml

clean: ## Remove the local tracking store and the environment
	rm -rf $(VENV) mlruns mlartifacts mlflow.db mlflow-server
