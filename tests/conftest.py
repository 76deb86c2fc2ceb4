"""Shared fixtures: temporary tracking stores, the committed real data, the cold pipeline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.helpers.runs import BTC_CSV, ProjectRun, Store, make_run, make_store, small_pipeline

PIPELINE_EXPERIMENT = "psystock"  # make run's default EXPERIMENT


@pytest.fixture(scope="session")
def btc_csv() -> Path:
    """Real BTC-USD daily bars, 2014-09-17 to 2020-12-31 (tests/fixtures/README.md)."""
    return BTC_CSV


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    s = make_store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", s.uri)
    mlflow.set_tracking_uri(s.uri)
    return s


def _shared_store(
    tmp_path_factory: pytest.TempPathFactory, name: str, experiment: str = "psystock-test"
) -> Iterator[Store]:
    s = make_store(tmp_path_factory.mktemp(name), experiment)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = s.uri
    mlflow.set_tracking_uri(s.uri)
    yield s
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from _shared_store(tmp_path_factory, "store")


@pytest.fixture(scope="session")
def pipeline_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The store of the cold pipeline that the main and cache tests share: its experiment is the one
    `make run` logs into by default (made here first, so that its artifacts stay in the temp folder)."""
    yield from _shared_store(tmp_path_factory, "pipeline", PIPELINE_EXPERIMENT)


@pytest.fixture(scope="session")
def cold_pipeline(pipeline_store: Store, btc_csv: Path) -> ProjectRun:
    """One cold pipeline started as a user starts it, `make run` (`mlflow run . -e main`), all three
    trainings allowed to run at once."""
    mlflow.set_tracking_uri(pipeline_store.uri)
    os.environ["MLFLOW_TRACKING_URI"] = pipeline_store.uri
    return make_run(pipeline_store, PIPELINE_EXPERIMENT, small_pipeline(btc_csv, max_parallel=3))
