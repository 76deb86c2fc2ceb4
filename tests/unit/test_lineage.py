"""Logging a run's dataset: a row another run committed first is joined, any other refusal is raised.

The race itself, on PostgreSQL behind a server, is in tests/integration/test_server.py."""

from __future__ import annotations

import logging
import sqlite3
import uuid

import mlflow
import pandas as pd
import pytest
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from mlflow.exceptions import MlflowException

from psystock.mlflow_io.lifecycle import is_duplicate_key
from psystock.mlflow_io.lineage import log_dataset


def prices() -> PandasDataset:
    return from_pandas(pd.DataFrame({"Open": [1.0, 2.0, 3.0]}), source="prices.csv", name="BTC-USD daily")


def test_a_dataset_logged_again_by_another_run_is_the_same_row(store):
    dataset = prices()
    for _ in range(2):
        with mlflow.start_run(experiment_id=store.experiment_id) as run:
            log_dataset(dataset, context="prices")
        inputs = store.client.get_run(run.info.run_id).inputs.dataset_inputs
        assert [(i.dataset.digest, i.tags[0].value) for i in inputs] == [(dataset.digest, "prices")]
    database = sqlite3.connect(store.uri.removeprefix("sqlite:///"))
    assert database.execute("SELECT count(*) FROM datasets").fetchone() == (1,)


def test_sqlites_refusal_of_a_second_row_with_the_same_key_is_a_duplicate_key(store):
    dataset = prices()
    with mlflow.start_run(experiment_id=store.experiment_id):
        log_dataset(dataset, context="prices")
    database = sqlite3.connect(store.uri.removeprefix("sqlite:///"))
    with pytest.raises(sqlite3.IntegrityError) as refused:
        database.execute(
            "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source)"
            " VALUES (?, ?, ?, ?, 'local', '{}')",
            (uuid.uuid4().hex, int(store.experiment_id), dataset.name, dataset.digest),
        )
    assert is_duplicate_key(MlflowException(str(refused.value)))
    assert not is_duplicate_key(MlflowException("Run 'abc' not found"))


def test_a_refusal_that_is_not_a_duplicate_key_is_raised_at_once(store, caplog):
    with mlflow.start_run(experiment_id=store.experiment_id) as run:
        store.client.delete_run(run.info.run_id)
        with caplog.at_level(logging.INFO, "psystock.lineage"), pytest.raises(MlflowException, match="active"):
            log_dataset(prices(), context="prices")
        store.client.restore_run(run.info.run_id)
    assert "linking this run" not in caplog.text
