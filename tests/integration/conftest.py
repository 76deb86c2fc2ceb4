"""The integration tests' warm server, and the chain a user runs by hand, once per test module:
fetch_data's prices feed build_features, whose features feed every model step."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Run

from psystock import handover, names, warm
from tests.helpers.runs import Store, finished, mlflow_run

RANGE = {"start": "2014-01-01", "end": "2020-12-31"}  # the reference's


@pytest.fixture(scope="session", autouse=True)
def warm_server() -> Iterator[str]:
    """A warm server for this test process's steps, as ``make warm`` starts one for a user's: every
    ``python -m steps.<name>`` the tests start (a step run alone with ``mlflow run``, a ``main``)
    hands itself over to it. Its name is this process's, so no other worker's steps reach it; a
    test that needs new interpreters sets ``PSYSTOCK_WARM=off``. Stopped at the session's end."""
    name = f"tests-{os.getpid()}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(handover.NAME, name)
        patch.setenv(warm.IDLE, "10")  # a server a crashed worker left behind goes soon by itself
        warm.start()
        try:
            yield name
        finally:
            warm.stop(name)


@pytest.fixture(scope="module")
def fetched(module_store: Store, btc_csv: Path) -> Run:
    return finished(mlflow_run(module_store, "fetch_data", {"source": btc_csv, **RANGE}))


@pytest.fixture(scope="module")
def features(module_store: Store, fetched: Run) -> Run:
    uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    return finished(mlflow_run(module_store, "build_features", {"prices": uri}))


@pytest.fixture(scope="module")
def training_data(features: Run) -> str:
    return names.run_uri(features.info.run_id, names.FEATURES_DIR)
