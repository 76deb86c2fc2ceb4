"""Shared fixtures: temporary tracking stores, the committed real data, the cold pipeline."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from psystock import handover, names
from psystock.models.keras_net import quiet_tensorflow
from tests.helpers.runs import BTC_CSV, ProjectRun, Store, make_run, make_store, small_pipeline, tracking_uri

pytest_plugins = ["tests.helpers.scheduling"]

# TensorFlow reads its settings once, as it is imported: whichever test imports it first in a
# worker (a training run's Keras model loaded through mlflow.pyfunc does), the tests run it as
# the steps do, and a test that compares Keras's numbers to the digit does not depend on the order.
quiet_tensorflow()

PIPELINE_EXPERIMENT = "psystock"  # make run's default EXPERIMENT


@pytest.fixture(scope="session", autouse=True)
def temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The temporary files of the tests, and of the processes they start (MLflow's downloads of
    models and artifacts, `mlflow run`'s directories), go under pytest's own folder, which keeps
    the last three sessions' only: the tests leave nothing in the machine's temporary folder."""
    path = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(path))
        patch.setattr(tempfile, "tempdir", str(path))
        yield path


@pytest.fixture(scope="session", autouse=True)
def price_store_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests, and the steps they start, keep what they fetch in a price store of their own."""
    from psystock.price_store import DATA_DIR_ENV

    path = tmp_path_factory.mktemp("price-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_DIR_ENV, str(path))
        yield path


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """What a test changes in ``os.environ`` ends with it: a step run in the test's own process
    sets MLflow's settings for itself (``run_step``), as its own process would, and a later test's
    ``mlflow`` command must not start with them."""
    before = dict(os.environ)
    yield
    if os.environ != before:
        os.environ.clear()
        os.environ.update(before)


@pytest.fixture(scope="session")
def btc_csv() -> Path:
    """Real BTC-USD daily bars, 2014-09-17 to 2020-12-31 (tests/fixtures/README.md)."""
    return BTC_CSV


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = make_store(tmp_path)
    with tracking_uri(s.uri):
        yield s


def _shared_store(
    tmp_path_factory: pytest.TempPathFactory, name: str, experiment: str = "psystock-test"
) -> Iterator[Store]:
    s = make_store(tmp_path_factory.mktemp(name), experiment)
    with tracking_uri(s.uri):
        yield s


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from _shared_store(tmp_path_factory, "store")


@pytest.fixture(scope="session")
def pipeline_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The store of the cold pipeline that the main and cache tests share: its experiment is the one
    `make run` logs into by default (made here first, so that its artifacts stay in the temp folder)."""
    yield from _shared_store(tmp_path_factory, "pipeline", PIPELINE_EXPERIMENT)


@pytest.fixture(scope="session")
def pipeline_temp(pipeline_store: Store) -> Path:
    """The ``TMPDIR`` of the cold pipeline's processes, to see what they leave behind."""
    path = pipeline_store.root / "tmp"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def cold_pipeline(pipeline_store: Store, pipeline_temp: Path) -> ProjectRun:
    """One cold pipeline started as a user starts it on a fresh machine, `make run` with no data
    given (`mlflow run . -e main`, the bars from the price store, which the committed ones seed: no
    network needed), all three trainings allowed to run at once. A fresh machine has no warm server
    (``make warm``): ``main`` starts as a new interpreter and forks its steps from servers of its own."""
    params = small_pipeline(names.STORE, max_parallel=3)
    env = {"TMPDIR": str(pipeline_temp), handover.NAME: handover.OFF}
    return make_run(pipeline_store, PIPELINE_EXPERIMENT, params, env=env)
