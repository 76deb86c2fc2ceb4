"""A new SQLite store made ready once, whoever asks at the same time."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from psystock import PsystockError
from psystock.tracking_store import is_ready, prepare, sqlite_path


def test_two_first_runs_at_once_on_a_new_file_both_find_it_ready(tmp_path):
    """Each process runs what `make run` runs first; without the lock, MLflow's schema creation races."""
    uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    command = [sys.executable, "-m", "psystock.tracking_store", uri, "psystock"]
    runs = [subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in runs]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    client = MlflowClient(uri)
    assert [e.name for e in client.search_experiments() if e.name == "psystock"] == ["psystock"]
    experiment = client.get_experiment_by_name("psystock")
    assert experiment is not None
    run = client.create_run(experiment.experiment_id)  # the schema is whole
    client.set_terminated(run.info.run_id)
    assert is_ready(tmp_path / "new" / "mlflow.db", "psystock")


def test_a_ready_store_is_left_alone_and_another_experiment_is_added(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert prepare(uri, "one")
    assert not prepare(uri, "one") and not prepare(uri)
    assert prepare(uri, "two") and MlflowClient(uri).get_experiment_by_name("two") is not None


def test_a_store_made_by_another_mlflow_version_is_upgraded_once(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    prepare(uri, "one")
    (tmp_path / "mlflow.db.ready").write_text("2.9.0\n")
    assert prepare(uri, "one") and not prepare(uri, "one")


def test_only_sqlite_files_are_prepared_here(tmp_path):
    assert (
        sqlite_path("sqlite:////abs/mlflow.db") is not None and str(sqlite_path("sqlite:////abs/m.db")) == "/abs/m.db"
    )
    assert not prepare("http://127.0.0.1:5000") and not prepare("postgresql://u@localhost/db")
    assert sqlite_path("http://127.0.0.1:5000") is None


ADVICE = (
    "point MLFLOW_TRACKING_URI (make: TRACKING_URI) at an MLflow SQLite file, or a new one in a folder you can write"
)


def test_a_store_that_cannot_be_made_or_opened_is_one_line_and_left_as_it_was(tmp_path):
    not_a_folder = tmp_path / "taken"
    not_a_folder.write_text("a file")
    uri = f"sqlite:///{not_a_folder}/mlflow.db"
    done = subprocess.run(
        [sys.executable, "-m", "psystock.tracking_store", uri, "psystock"], capture_output=True, text=True, timeout=300
    )
    assert (done.returncode, done.stderr) == (
        1,
        f"tracking store: error: cannot use the tracking store {uri} (File exists: {not_a_folder}): {ADVICE}\n",
    )
    not_a_store = tmp_path / "notes.db"
    not_a_store.write_text("my notes")
    with pytest.raises(PsystockError) as raised:
        prepare(f"sqlite:///{not_a_store}", "psystock")
    assert (
        str(raised.value) == f"cannot use the tracking store sqlite:///{not_a_store} (file is not a database): {ADVICE}"
    )
    assert not_a_store.read_text() == "my notes" and not (tmp_path / "notes.db.ready").exists()


def test_a_ready_store_damaged_since_is_one_line(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    prepare(uri, "one")
    (tmp_path / "mlflow.db").write_bytes(b"overwritten")
    with pytest.raises(PsystockError) as raised:
        prepare(uri, "one")
    assert str(raised.value) == f"cannot use the tracking store {uri} (file is not a database): {ADVICE}"
