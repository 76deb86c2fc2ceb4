"""The team server on PostgreSQL (``make server`` with ``BACKEND_STORE_URI=postgresql://...``):
four pipelines logging at once, and the two races they met, each made certain by holding the
other session's insert open until the server's own waits on it."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator

import mlflow
import pandas as pd
import psycopg
import pytest
from mlflow.data.pandas_dataset import from_pandas
from mlflow.tracking import MlflowClient

from psystock import names
from psystock.mlflow_io import cache_store
from psystock.mlflow_io.lifecycle import mark_model_development
from psystock.mlflow_io.lineage import log_dataset
from tests.helpers.runs import small_pipeline
from tests.helpers.services import Postgres, TrackingServer, wait_until
from tests.helpers.team_server import assert_complete, server_store, start_main, step_runs

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_four_pipelines_at_once_on_postgresql(tmp_path_factory, btc_csv):
    postgres = Postgres().start()
    server = TrackingServer(tmp_path_factory.mktemp("pg-server"), backend_store_uri=postgres.uri)
    try:
        server.start()
        client = MlflowClient(server.url)
        store = server_store(server, tmp_path_factory.mktemp("pg-client"), client)
        mains = [start_main(store, small_pipeline(btc_csv, seed=seed, max_parallel=1)) for seed in (1, 2, 3, 4)]
        outputs = [m.communicate(timeout=900) for m in mains]
        for m, (_out, err) in zip(mains, outputs, strict=True):
            assert m.returncode == 0, err[-3000:]
            assert "OperationalError" not in err and "IntegrityError" not in err
        pipelines = client.search_runs([store.experiment_id], "tags.`psystock.step` = 'main'")
        assert len(pipelines) == 4 and all(p.info.status == "FINISHED" for p in pipelines)
        assert {p.data.params["seed"] for p in pipelines} == {"1", "2", "3", "4"}
        runs = step_runs(client, store.experiment_id)
        assert all(r.info.status == "FINISHED" for r in runs)
        assert_complete(client, runs)
        # Each training run's model is its own, under its own run's artifact folder.
        trained = [
            r
            for r in runs
            if r.data.tags[names.TAG_STEP] == "train_logreg" and not r.data.tags.get(names.TAG_CACHED_STEP)
        ]
        assert len(trained) == 4
        for run in trained:
            assert run.info.run_id in run.info.artifact_uri
            assert not cache_store.missing_artifacts(run, [f"{names.MODEL}/MLmodel"], client)
        assert "postgresql" in server.settings.backend_store_uri
    finally:
        server.stop()
        postgres.stop()


@contextlib.contextmanager
def server_on_postgresql(tmp_path, monkeypatch) -> Iterator[tuple[Postgres, MlflowClient]]:
    """A tracking server on a new PostgreSQL, the tracking URI of this test."""
    postgres = Postgres().start()
    server = TrackingServer(tmp_path, backend_store_uri=postgres.uri)
    try:
        server.start()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        yield postgres, MlflowClient(server.url)
    finally:
        server.stop()
        postgres.stop()


def while_a_row_is_held(postgres: Postgres, insert: str, values: tuple[object, ...], writer) -> list[BaseException]:
    """Run ``writer`` while another session holds ``insert`` uncommitted; commit it once the server's own
    insert waits on it (the later insert then hits the unique key). What ``writer`` raised."""
    failures: list[BaseException] = []

    def write() -> None:
        try:
            writer()
        except BaseException as error:  # the test reports it
            failures.append(error)

    with psycopg.connect(postgres.uri) as other:
        other.execute(insert, values)
        thread = threading.Thread(target=write)
        thread.start()
        waiting = "SELECT 1 FROM pg_locks WHERE NOT granted"  # the server's session, seen from this one
        wait_until(lambda: other.execute(waiting).fetchone() is not None, 60, "the server's insert waiting")
        other.commit()
        thread.join(120)
    return failures


def test_two_runs_logging_one_new_dataset_at_once_both_get_it_on_postgresql(tmp_path, monkeypatch, caplog):
    """The race four pipelines met: both runs find the dataset missing and insert it; the later insert
    hits the unique key. Made certain here by holding the first insert open until the second waits on it."""
    with server_on_postgresql(tmp_path, monkeypatch) as (postgres, client):
        experiment = client.create_experiment("race")
        dataset = from_pandas(pd.DataFrame({"Open": [1.0, 2.0]}), source="prices.csv", name="BTC-USD daily")
        run = client.create_run(experiment)

        def log_it() -> None:
            with mlflow.start_run(run_id=run.info.run_id):
                log_dataset(dataset, context="prices")

        with caplog.at_level(logging.INFO, "psystock.lineage"):
            failures = while_a_row_is_held(
                postgres,
                "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source)"
                " VALUES (%s, %s, %s, %s, 'local', '{}')",
                (uuid.uuid4().hex, int(experiment), dataset.name, dataset.digest),
                log_it,
            )
        assert not failures, failures
        assert "linking this run to it" in caplog.text
        inputs = client.get_run(run.info.run_id).inputs
        assert inputs is not None
        assert [(i.dataset.name, i.dataset.digest) for i in inputs.dataset_inputs] == [(dataset.name, dataset.digest)]


def test_two_pipelines_tagging_a_new_experiment_at_once_both_start_on_postgresql(tmp_path, monkeypatch):
    """Four pipelines met this too: each tags the new experiment as model development, and the store
    inserts the tag when it finds none; the later insert hits the unique key."""
    with server_on_postgresql(tmp_path, monkeypatch) as (postgres, client):
        experiment = client.create_experiment("race")
        failures = while_a_row_is_held(
            postgres,
            "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (%s, %s, %s)",
            (names.EXPERIMENT_KIND, names.MODEL_DEVELOPMENT, int(experiment)),
            lambda: mark_model_development(experiment),
        )
        assert not failures, failures
        assert client.get_experiment(experiment).tags[names.EXPERIMENT_KIND] == names.MODEL_DEVELOPMENT
