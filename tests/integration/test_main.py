"""The whole experiment: `mlflow run . -e main` on the real BTC-USD bars."""

import json

import mlflow
import pandas as pd
import pytest

from psystock import tracking
from tests.conftest import mlflow_run

pytestmark = pytest.mark.integration

STEPS = {"fetch_data", "build_features", "train_logreg", "train_xgboost", "train_keras", "compare", "tune"}


@pytest.fixture(scope="module")
def pipeline(module_store, btc_csv):
    result = mlflow_run(
        module_store, "main", {"source": btc_csv, "keras_epochs": 2, "max_evals": 3, "cv_folds": 3}, timeout=900
    )
    assert result.returncode == 0, result.output[-4000:]
    return mlflow.get_run(result.run_id), result


def test_main_finishes_with_every_step_linked_to_it(pipeline, module_store):
    main, _ = pipeline
    assert main.info.status == "FINISHED"
    steps = json.loads(main.data.tags["psystock.step_runs"])
    assert set(steps) == STEPS
    client = mlflow.MlflowClient()
    children = client.search_runs([module_store.experiment_id], f"tags.mlflow.parentRunId = '{main.info.run_id}'")
    assert {c.info.run_id for c in children} == set(steps.values())
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[tracking.TAG_STEP] in STEPS


def test_main_chains_outputs_by_run_uris(pipeline):
    main, _ = pipeline
    steps = json.loads(main.data.tags["psystock.step_runs"])
    get = lambda ep: mlflow.get_run(steps[ep])  # noqa: E731
    assert get("build_features").data.params["prices"] == f"runs:/{steps['fetch_data']}/prices"
    features = f"runs:/{steps['build_features']}/features"
    for ep in ("train_logreg", "train_xgboost", "train_keras", "tune"):
        assert get(ep).data.params["training_data"] == features
    assert get("compare").data.params["training_runs"] == ",".join(
        steps[ep] for ep in ("train_logreg", "train_xgboost", "train_keras"))
    assert get("train_keras").data.params["epochs"] == "2"


def test_leaderboard_lists_the_three_families_and_tune_takes_the_winner(pipeline):
    main, _ = pipeline
    steps = json.loads(main.data.tags["psystock.step_runs"])
    board = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{steps['compare']}/leaderboard/leaderboard.csv"))
    assert sorted(board["family"]) == ["keras", "logreg", "xgboost"]
    winner = board.iloc[0]["family"]
    tune = mlflow.get_run(steps["tune"])
    assert tune.data.params["family"] == winner
    assert main.data.tags[tracking.TAG_WINNER_FAMILY] == winner
    assert main.data.metrics["tuned_f1_experiment_score"] == tune.data.metrics["f1_experiment_score"]


def test_tuning_run_has_max_evals_children(pipeline, module_store):
    main, _ = pipeline
    tune_id = json.loads(main.data.tags["psystock.step_runs"])["tune"]
    trials = mlflow.MlflowClient().search_runs(
        [module_store.experiment_id], f"tags.mlflow.parentRunId = '{tune_id}'"
    )
    assert len(trials) == 3
    assert sorted(t.info.run_name for t in trials) == ["trial_001", "trial_002", "trial_003"]


def test_main_reports_progress_per_step(pipeline):
    _, result = pipeline
    for step in STEPS:
        assert f"{step}: running (run " in result.stderr
        assert f"{step}: finished (run " in result.stderr
