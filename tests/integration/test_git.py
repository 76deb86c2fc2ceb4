"""`mlflow run git://...`: the project served by a real `git daemon` on 127.0.0.1."""

from __future__ import annotations

import subprocess

import mlflow
import pytest

from tests.helpers.runs import PROJECT, Store, mlflow_run, small_pipeline
from tests.helpers.services import GitDaemon, git

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """This repository, as committed, behind ``git daemon``: (URL, commit)."""
    root = tmp_path_factory.mktemp("git")
    daemon = GitDaemon(root).start()
    url = daemon.publish(PROJECT, "psystock.git")
    commit = git("rev-parse", "HEAD", cwd=PROJECT)
    # The same commit as a subfolder of a larger repository, for the #subdir form.
    mono = root / "mono-work"
    mono.mkdir()
    git("init", "--quiet", str(mono), cwd=root)
    archive = subprocess.run(
        ["git", "archive", "--prefix=projects/psystock/", "HEAD"], cwd=PROJECT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x"], input=archive, cwd=mono, check=True)
    git("add", "-A", cwd=mono)
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "-m", "monorepo", cwd=mono)
    daemon.publish(mono, "mono.git")
    daemon.wait_for(url)
    yield url, commit
    daemon.stop()


@pytest.mark.slow
def test_main_runs_from_a_git_url_at_a_commit_and_so_do_its_steps(served, store: Store, btc_csv):
    url, commit = served
    result = mlflow_run(
        store,
        "main",
        {**small_pipeline(btc_csv), "use_cache": "false"},
        project=url,
        extra_args=["--version", commit],
        timeout=900,
    )
    assert result.returncode == 0, result.output[-3000:]
    main = mlflow.get_run(result.run_id)
    assert main.info.status == "FINISHED"
    assert main.data.tags["mlflow.source.git.commit"] == commit
    assert main.data.tags["mlflow.source.name"] == url
    assert "tuned_test_mcc" in main.data.metrics
    steps = mlflow.MlflowClient().search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{main.info.run_id}'")
    assert len(steps) == 10
    # Every step ran from main's checkout of that commit, not from this working copy.
    assert {s.data.tags.get("mlflow.source.git.commit") for s in steps} == {commit}
    assert all(str(PROJECT) not in s.data.tags.get("mlflow.source.name", "") for s in steps)


@pytest.mark.slow
def test_a_step_runs_from_a_subfolder_of_a_larger_repository(served, store: Store, btc_csv):
    url, _ = served
    mono = url.replace("psystock.git", "mono.git") + "#projects/psystock"
    result = mlflow_run(
        store, "fetch_data", {"source": btc_csv, "start": "2020-01-01", "end": "2020-12-31"}, project=mono
    )
    assert result.returncode == 0, result.output[-3000:]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.source.name"] == mono
    assert run.data.metrics["rows"] == 366
