"""The team server with MLflow's basic-auth (``make server-auth``): strangers refused, a user's
pipeline runs under its owner's name, and another user cannot touch that owner's experiment."""

from __future__ import annotations

import uuid

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from psystock import names
from tests.helpers.runs import mlflow_run, small_pipeline
from tests.helpers.services import TrackingServer
from tests.helpers.team_server import server_store, step_runs

pytestmark = pytest.mark.integration

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
