"""`universe` with `spark_master=local[2]`: each ticker's pipeline a Spark task, fetched from the same
Git URL and commit as the universe (a real `git daemon`), logging to a real `mlflow server`."""

from __future__ import annotations

import shutil

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from psystock import names
from tests.helpers.runs import FIXTURES, PROJECT, Store, finished, mlflow_run, small_pipeline
from tests.helpers.services import GitDaemon, TrackingServer, git

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = TrackingServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """This repository, as committed, behind ``git daemon``: (URL, commit)."""
    daemon = GitDaemon(tmp_path_factory.mktemp("git")).start()
    url = daemon.publish(PROJECT, "psystock.git")
    daemon.wait_for(url)
    yield url, git("rev-parse", "HEAD", cwd=PROJECT)
    daemon.stop()


def test_each_pipeline_runs_as_a_spark_task_from_the_universes_git_commit(server, served, tmp_path, monkeypatch):
    url, commit = served
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    folder = tmp_path / "prices"
    folder.mkdir()
    for ticker in ("SPY", "GLD"):
        shutil.copy(FIXTURES / f"{ticker}.csv", folder / f"{ticker}.csv")
    client = MlflowClient(server.url)
    store = Store(server.url, tmp_path, client.create_experiment("universe-on-spark"))
    params = {
        **small_pipeline(folder, start="2011-01-01", end="2012-08-31", max_evals=1),
        "tickers": "SPY,GLD",
        "spark_master": "local[2]",
    }
    result = mlflow_run(store, "universe", params, project=url, extra_args=["--version", commit], timeout=1500)
    universe = finished(result)
    assert "running 2 pipelines as Spark tasks on local[2]" in result.stderr
    assert universe.data.tags["mlflow.source.name"] == url
    children = client.search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{universe.info.run_id}'")
    by_ticker = {run.data.tags[names.TAG_TICKER]: run for run in children}
    assert set(by_ticker) == {"SPY", "GLD"}
    for main in by_ticker.values():
        assert main.info.status == "FINISHED"
        # Fetched by the task from the Git URL at the universe's commit, not from a checkout here.
        assert main.data.tags["mlflow.source.name"] == url
        assert main.data.tags["mlflow.source.git.commit"] == commit
        assert main.data.params["spark_master"] == ""  # its tuning ran in the task's own process
        steps = client.search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{main.info.run_id}'")
        assert len(steps) == 10 and {s.info.status for s in steps} == {"FINISHED"}
        assert {s.data.tags.get("mlflow.source.git.commit") for s in steps} == {commit}
    table = mlflow.artifacts.load_text(
        names.run_uri(universe.info.run_id, names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_TICKERS))
    )
    assert table.count(",finished,") == 2

    # The same universe again, still on Spark: both pipelines are reused, none is launched.
    again = mlflow_run(store, "universe", params, project=url, extra_args=["--version", commit], timeout=600)
    finished(again)
    assert "Spark tasks" not in again.stderr
    links = client.search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{again.run_id}'")
    assert {run.data.tags[names.TAG_REUSED_RUN] for run in links} == {r.info.run_id for r in children}
