"""Pipelines against a tracking server started as ``make server`` starts it: a fresh experiment on
it, ``main`` started as a user starts it, and what the server then holds."""

from __future__ import annotations

import subprocess
import uuid

from mlflow.tracking import MlflowClient

from psystock import names
from psystock.mlflow_io import cache_store
from tests.helpers.runs import Store, project_command
from tests.helpers.services import TrackingServer, wait_until

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
    """``mlflow run . -e main`` into ``store``, started with the ``mlflow`` executable as a user
    starts it (``env``: more variables), its output kept for ``communicate``."""
    return subprocess.Popen(
        project_command(store, "main", params),
        env=store.env() | (env or {}),
        cwd=store.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def step_runs(client: MlflowClient, experiment_id: str, parent: str | None = None) -> list:
    """The experiment's step runs (of one pipeline, given its ``main`` run as ``parent``)."""
    query = "tags.`psystock.step` LIKE '%'" + (f" and tags.mlflow.parentRunId = '{parent}'" if parent else "")
    return client.search_runs([experiment_id], query, max_results=1000)


def wait_for_running(client: MlflowClient, experiment_id: str, step: str, timeout: float = 300) -> None:
    """Wait until a run of ``step`` is RUNNING in the experiment."""
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
