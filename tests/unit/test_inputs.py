"""What steps read from other runs: a run's artifacts read through a temporary copy that is gone
when the reading is done, and local files read where they are."""

from __future__ import annotations

import tempfile

import mlflow
import pandas as pd
import pytest

from psystock import PsystockError, names
from psystock.mlflow_io.inputs import artifact_bytes, load_features, local_input, read_input_csv
from tests.helpers.runs import tracking_uri


@pytest.fixture
def run_id(tmp_path):
    """A run holding a features directory as build_features logs it, in its own SQLite store."""
    table = pd.DataFrame({"f1": [0.1, 0.2, 0.3], "f2": [1.0, 0.0, 1.0], "label": [1, 0, 1]})
    days = pd.DataFrame({"date": ["2020-01-02", "2020-01-03", "2020-01-04"], "open_to_close": [0.01, -0.02, 0.0]})
    folder = tmp_path / "logged" / names.FEATURES_DIR
    folder.mkdir(parents=True)
    table.to_csv(folder / names.FEATURES_FILE, index=False)
    days.to_csv(folder / names.LABEL_DATES_FILE, index=False)
    with tracking_uri(f"sqlite:///{tmp_path}/mlflow.db"):
        mlflow.set_experiment("inputs")
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(folder), names.FEATURES_DIR)
        yield run.info.run_id


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Python's temporary directories made here, to see what is left behind."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_artifact_is_read_from_a_copy_removed_when_the_block_ends(run_id, scratch):
    with local_input(names.run_uri(run_id, names.FEATURES_DIR), names.FEATURES_FILE, "training_data") as path:
        assert path.name == names.FEATURES_FILE and path.is_relative_to(scratch)
        assert path.with_name(names.LABEL_DATES_FILE).is_file()  # the directory came whole
    assert list(scratch.iterdir()) == []


def test_features_and_their_days_read_from_a_run_leave_nothing_behind(run_id, scratch):
    features = load_features(names.run_uri(run_id, names.FEATURES_DIR))
    assert list(features.X.columns) == ["f1", "f2"] and list(features.y) == [1, 0, 1]
    assert features.dates is not None and len(features.dates) == 3
    table = read_input_csv(names.run_uri(run_id, names.FEATURES_DIR), names.LABEL_DATES_FILE, "days")
    assert list(table["open_to_close"]) == [0.01, -0.02, 0.0]
    assert list(scratch.iterdir()) == []


def test_one_artifact_as_bytes_leaves_nothing_behind_found_or_not(run_id, scratch):
    found = artifact_bytes(run_id, names.artifact(names.FEATURES_DIR, names.FEATURES_FILE))
    assert found is not None and found.startswith(b"f1,f2,label")
    assert artifact_bytes(run_id, "no/such.png") is None
    assert list(scratch.iterdir()) == []


def test_a_missing_artifact_is_one_line_and_leaves_nothing_behind(run_id, scratch):
    with pytest.raises(PsystockError, match=r"^training_data: cannot read runs:/\w+/nothing: "):
        load_features(names.run_uri(run_id, "nothing"))
    assert list(scratch.iterdir()) == []


def test_a_local_input_is_read_where_it_is_and_kept(tmp_path, scratch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "table.csv").write_text("a,b\n1,2\n")
    with local_input(str(folder), "table.csv", "table") as path:
        assert path == folder / "table.csv"
    assert (folder / "table.csv").read_text() == "a,b\n1,2\n"
    assert list(scratch.iterdir()) == []
    with pytest.raises(PsystockError, match=r"^table: .* has no other.csv$"):
        read_input_csv(str(folder), "other.csv", "table")
