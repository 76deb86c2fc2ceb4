"""psystock against a real tracking server started as ``make server`` starts it: SQLite and
PostgreSQL backends, proxied artifacts, basic-auth, outages and restarts."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import psycopg
import pytest
import requests
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from psystock import names
from psystock.mlflow_io import cache_store
from psystock.mlflow_io.lifecycle import mark_model_development
from psystock.mlflow_io.lineage import log_dataset
from tests.helpers.runs import Store, mlflow_run, project_command, small_pipeline, step_run
from tests.helpers.services import Postgres, TrackingServer, free_port, wait_until

pytestmark = pytest.mark.integration

# A step gives up quickly when the server is gone for good (the default retries for minutes).
IMPATIENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def server_store(server: TrackingServer, tmp_path, client: MlflowClient | None = None) -> Store:
    """A fresh experiment on ``server``; artifacts go through the server (no artifact_location)."""
    client = client or MlflowClient(server.url)
    return Store(server.url, tmp_path, client.create_experiment(f"psystock-{uuid.uuid4().hex[:8]}"))


def start_main(store: Store, params: dict, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        project_command(store, "main", params),
        env=store.env() | (env or {}),
        cwd=store.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def step_runs(client: MlflowClient, experiment_id: str, parent: str | None = None) -> list:
    query = "tags.`psystock.step` LIKE '%'" + (f" and tags.mlflow.parentRunId = '{parent}'" if parent else "")
    return client.search_runs([experiment_id], query, max_results=1000)


def wait_for_running(client: MlflowClient, experiment_id: str, step: str, timeout: float = 300) -> None:
    wait_until(
        lambda: any(
            r.data.tags.get(names.TAG_STEP) == step and r.info.status == "RUNNING"
            for r in step_runs(client, experiment_id)
        ),
        timeout,
        f"a running {step} step",
    )


def assert_complete(client: MlflowClient, runs) -> None:
    """Every FINISHED step run has the artifacts its step promises, fetched through the server."""
    for run in runs:
        if run.info.status != "FINISHED" or run.data.tags.get(names.TAG_CACHED_STEP):
            continue
        step = run.data.tags[names.TAG_STEP]
        expected = cache_store.EXPECTED_ARTIFACTS.get(step, ())
        assert not cache_store.missing_artifacts(run, expected, client), f"{step} run {run.info.run_id}"


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    server = TrackingServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_pipeline_survives_an_outage_and_a_restart(sqlite_server, btc_csv, tmp_path):
    """Server stopped mid-training: main fails clearly and leaves nothing FINISHED half-done.
    After the restart main completes, reusing what had finished, through a second, brief restart."""
    client = MlflowClient(sqlite_server.url)
    store = server_store(sqlite_server, tmp_path, client)
    params = small_pipeline(btc_csv, max_parallel=3)

    first = start_main(store, params, IMPATIENT)
    wait_for_running(client, store.experiment_id, "train_keras")
    sqlite_server.stop()
    _, err = first.communicate(timeout=300)
    assert first.returncode != 0
    assert f"cannot reach the tracking server at {sqlite_server.url}" in err, err[-3000:]
    sqlite_server.start()
    before = step_runs(client, store.experiment_id)
    assert_complete(client, before)
    finished_before = {r.data.tags[names.TAG_STEP] for r in before if r.info.status == "FINISHED"}
    assert "train_keras" not in finished_before and {"fetch_data", "build_features"} <= finished_before

    second = start_main(store, params)  # MLflow's default retries ride out a brief restart
    wait_for_running(client, store.experiment_id, "compare")
    sqlite_server.stop()
    sqlite_server.start()
    _out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    main_run = client.search_runs(
        [store.experiment_id], "tags.`psystock.step` = 'main'", order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    assert main_run.info.status == "FINISHED"
    assert set(main_run.data.tags["psystock.cached_steps"].split(",")) == finished_before
    children = step_runs(client, store.experiment_id, main_run.info.run_id)
    assert all(r.info.status == "FINISHED" for r in children)
    assert_complete(client, step_runs(client, store.experiment_id))
    report_run = next(r for r in children if r.data.tags[names.TAG_STEP] == "report")
    report_path = names.artifact(names.REPORT_DIR, names.REPORT_HTML)
    report = mlflow.artifacts.download_artifacts(
        f"runs:/{report_run.data.tags.get(names.TAG_REUSED_RUN, report_run.info.run_id)}/{report_path}",
        tracking_uri=sqlite_server.url,
        dst_path=str(tmp_path / "report"),
    )
    assert "Leaderboard" in Path(report).read_text()
    # Proxied artifacts: clients only ever saw mlflow-artifacts:/ URIs; the files sit in the server's folder.
    assert main_run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert list((sqlite_server.root / "artifacts").rglob("report.html"))


def test_an_unreachable_tracking_server_is_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = step_run(Store(url, tmp_path, "0"), "fetch_data", {"source": "unused.csv"}, timeout=120, env=IMPATIENT)
    assert result.returncode != 0
    assert result.error_lines() == [
        f"fetch_data: error: cannot reach the tracking server at {url}: is it running? (MLFLOW_TRACKING_URI names it)"
    ], result.stderr[-2000:]


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


ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex  # made up per test run, never stored


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    server = TrackingServer(
        tmp_path_factory.mktemp("auth-server"), auth=True, env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    server.start()
    yield server
    server.stop()


def as_user(name: str, password: str) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": password}


@pytest.mark.slow
def test_basic_auth_refuses_strangers_and_keeps_experiments_their_owners(auth_server, btc_csv, tmp_path, monkeypatch):
    answer = requests.post(f"{auth_server.url}/api/2.0/mlflow/experiments/create", json={"name": "anon"}, timeout=10)
    assert answer.status_code == 401
    with pytest.raises(MlflowException):
        MlflowClient(auth_server.url).create_experiment("anonymous")

    for name, value in as_user("admin", ADMIN_PASSWORD).items():
        monkeypatch.setenv(name, value)
    users = get_app_client("basic-auth", tracking_uri=auth_server.url)
    users.create_user("alice", "alice-secret-1")
    users.create_user("bob", "bob-secret-1")

    for name, value in as_user("alice", "alice-secret-1").items():
        monkeypatch.setenv(name, value)
    alice = MlflowClient(auth_server.url)
    store = server_store(auth_server, tmp_path, alice)
    pipeline = mlflow_run(store, "main", small_pipeline(btc_csv), env=as_user("alice", "alice-secret-1"), timeout=900)
    assert pipeline.returncode == 0, pipeline.stderr[-3000:]
    assert alice.get_run(pipeline.run_id).info.status == "FINISHED"
    runs = step_runs(alice, store.experiment_id, pipeline.run_id)
    assert len(runs) == 10 and all(r.info.status == "FINISHED" for r in runs)
    built = next(r for r in runs if r.data.tags[names.TAG_STEP] == "build_features")

    for name, value in as_user("bob", "bob-secret-1").items():
        monkeypatch.setenv(name, value)
    bob = MlflowClient(auth_server.url)
    assert bob.get_run(built.info.run_id).info.status == "FINISHED"  # READ by default
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied|403"):
        bob.log_metric(built.info.run_id, "tampered", 1.0)
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied|403"):
        bob.create_run(store.experiment_id)
