"""Each entry point through the real `mlflow run . -e <step> --env-manager local`.

The steps are chained as a user would chain them: fetch_data's URI feeds
build_features, whose URI feeds every training step and tune.
"""

import json
import os
import re
import signal
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from psystock.features import going_up
from psystock.leaderboard import NOT_SCORES, TEST_METRICS
from psystock.mlflow_io import names
from psystock.mlflow_io.inputs import load_features
from tests.helpers.runs import mlflow_run

pytestmark = pytest.mark.integration

RANGE = {"start": "2014-01-01", "end": "2020-12-31"}


def finished(result):
    assert result.returncode == 0, result.output[-3000:]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    return run


def artifacts(run_id, path=""):
    return {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, path)}


@pytest.fixture(scope="module")
def fetched(module_store, btc_csv):
    return finished(mlflow_run(module_store, "fetch_data", {"source": btc_csv, **RANGE}))


@pytest.fixture(scope="module")
def features(module_store, fetched):
    uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    return finished(mlflow_run(module_store, "build_features", {"prices": uri}))


@pytest.fixture(scope="module")
def training_data(features):
    return names.run_uri(features.info.run_id, names.FEATURES_DIR)


@pytest.fixture(scope="module")
def trained(module_store, training_data):
    small = {"train_logreg": {}, "train_xgboost": {}, "train_keras": {"epochs": 2}}
    return {
        ep: finished(mlflow_run(module_store, ep, {"training_data": training_data, **p})) for ep, p in small.items()
    }


def test_fetch_data_logs_prices_plot_dataset_and_range(fetched, btc_csv):
    run = fetched
    assert run.data.params["source"] == str(btc_csv)
    assert run.data.params["ticker"] == "BTC-USD"
    assert run.data.metrics["rows"] == 2298  # 2014-09-17 .. 2020-12-31, one bar a day
    assert (run.data.tags["first_date"], run.data.tags["last_date"]) == ("2014-09-17", "2020-12-31")
    assert {"prices/prices.csv", "plots/open_price.png"} <= artifacts(run.info.run_id, "prices") | artifacts(
        run.info.run_id, "plots"
    )
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.digest == run.data.tags[names.TAG_DATASET_DIGEST]
    assert str(btc_csv) in dataset.source

    logged = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/prices/prices.csv"))
    source = pd.read_csv(btc_csv)
    source = source[(source["Date"] >= "2014-01-01") & (source["Date"] <= "2020-12-31")].reset_index(drop=True)
    pd.testing.assert_frame_equal(logged, source, check_dtype=False)


def test_build_features_writes_the_reference_layout(features, fetched):
    run = features
    assert run.data.metrics["rows"] == 2284
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/features/training_data.csv"))
    assert list(table.columns) == [str(i) for i in range(15)]
    assert len(table) == 2284
    dates = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/features/label_dates.csv"))
    assert dates["date"].iloc[0] == "2014-10-01" and dates["date"].iloc[-1] == "2020-12-31"
    # The label column is going_up of the day the dates file names.
    prices = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{fetched.info.run_id}/prices/prices.csv"), parse_dates=["Date"]
    )
    labels = going_up(prices, 0.00001)
    np.testing.assert_array_equal(table["14"].to_numpy(), labels.loc[pd.to_datetime(dates["date"])].to_numpy())
    np.testing.assert_array_equal(table["0"].to_numpy(), labels.iloc[:-14].to_numpy())


@pytest.mark.parametrize(
    ("entry_point", "run_name", "family"),
    [
        ("train_logreg", "logistic_regression_model_baseline", "logreg"),
        ("train_xgboost", "xgboost_model_baseline", "xgboost"),
        ("train_keras", "keras_model_baseline", "keras"),
    ],
)
def test_training_logs_metrics_plot_and_a_loadable_model(trained, training_data, entry_point, run_name, family):
    run = trained[entry_point]
    assert run.info.run_name == run_name
    assert run.data.tags[names.TAG_FAMILY] == family
    assert run.data.params["training_data"] == training_data
    assert run.data.params["split"] == "chronological" and run.data.params["seed"] == "4284"
    for metric in (
        "f1_experiment_score",
        "test_accuracy",
        "test_balanced_accuracy",
        "test_precision",
        "test_recall",
        "test_roc_auc",
        "test_up_rate",
    ):
        assert 0 <= run.data.metrics[metric] <= 1
    assert -1 <= run.data.metrics["test_mcc"] <= 1 and run.data.metrics["test_log_loss"] > 0
    # chronological split of 2284 rows at test_size 0.33: the last 754 rows, from 2018-12-08 on
    assert (run.data.tags["n_train"], run.data.tags["n_test"]) == ("1530", "754")
    assert run.data.tags["test_first_date"] > run.data.tags["train_last_date"]
    assert {
        f"plots/{name}.png" for name in ("confusion_matrix", "roc_curve", "precision_recall_curve", "calibration_curve")
    } <= artifacts(run.info.run_id, "plots")
    scores = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/metrics.json"))
    assert scores["f1_experiment_score"] == pytest.approx(run.data.metrics["f1_experiment_score"])

    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.signature is not None
    assert model.metadata.saved_input_example_info is not None
    window = pd.DataFrame([[1, 0] * 7], columns=[str(i) for i in range(14)])
    if family == "keras":
        window = window.to_numpy().astype("float32")
    answer = np.asarray(model.predict(window), dtype=float)
    if family == "logreg":  # served as predict_proba: (P(down), P(up))
        assert answer.shape == (1, 2) and answer.sum() == pytest.approx(1.0)
    else:
        assert answer.size == 1


def test_training_autologs_framework_details(trained):
    logreg = trained["train_logreg"]
    assert "training_f1_score" in logreg.data.metrics  # scikit-learn autologging
    assert "dual" in logreg.data.params  # autologged estimator parameters, not only ours
    xgb = trained["train_xgboost"]
    assert "feature_importance_weight.png" in artifacts(xgb.info.run_id)
    keras = trained["train_keras"]
    assert keras.data.params["optimizer_name"] == "adam" and keras.data.params["epochs"] == "2"
    logs = artifacts(keras.info.run_id, "training_logs")
    assert "training_logs/training_curves.png" in logs  # per-epoch loss and accuracy
    assert any(path.startswith("training_logs/train") for path in logs)  # TensorBoard event files


def test_baselines_score_on_the_models_split(module_store, training_data, trained):
    run = finished(mlflow_run(module_store, "baselines", {"training_data": training_data}))
    ids = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/baselines.json"))
    assert sorted(ids) == ["always_up", "persistence", "random_rate"]
    children = {name: mlflow.get_run(rid) for name, rid in ids.items()}
    for name, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert child.data.tags[names.TAG_FAMILY] == "baseline"
        assert child.info.run_name == f"baseline_{name}"
        assert "test_roc_auc" not in child.data.metrics  # no probabilities
    # Same test split as the models: the same up-rate.
    model = trained["train_logreg"].data.metrics
    for child in children.values():
        assert child.data.metrics["test_up_rate"] == pytest.approx(model["test_up_rate"])
    up = children["always_up"].data.metrics
    assert up["test_recall"] == 1.0 and up["test_precision"] == pytest.approx(up["test_up_rate"])


def test_compare_ranks_the_training_runs(module_store, trained):
    ids = ",".join(r.info.run_id for r in trained.values())
    run = finished(mlflow_run(module_store, "compare", {"training_runs": ids}))
    board = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/leaderboard/leaderboard.csv"))
    assert sorted(board["family"]) == ["keras", "logreg", "xgboost"]
    assert board["f1_experiment_score"].is_monotonic_decreasing
    best = max(trained.values(), key=lambda r: r.data.metrics["f1_experiment_score"])
    assert run.data.tags[names.TAG_WINNER_RUN] == best.info.run_id
    assert run.data.tags[names.TAG_WINNER_FAMILY] == best.data.tags[names.TAG_FAMILY]
    assert {"leaderboard/leaderboard.md", "leaderboard/leaderboard.png"} <= artifacts(run.info.run_id, "leaderboard")


def test_compare_by_another_metric_over_the_whole_experiment(module_store, trained):
    run = finished(mlflow_run(module_store, "compare", {"metric": "test_accuracy"}))
    best = max(trained.values(), key=lambda r: r.data.metrics["test_accuracy"])
    assert run.data.tags[names.TAG_WINNER_RUN] == best.info.run_id
    assert run.data.metrics["best_test_accuracy"] == pytest.approx(best.data.metrics["test_accuracy"])


@pytest.fixture(scope="module")
def tuned(module_store, training_data):
    return finished(mlflow_run(module_store, "tune", {"training_data": training_data, "max_evals": 3, "cv_folds": 3}))


def test_tune_logs_one_child_run_per_trial(module_store, tuned):
    run = tuned
    children = mlflow.MlflowClient().search_runs(
        [module_store.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == 3
    assert all(c.info.status == "FINISHED" for c in children)
    assert all({"loss", "mean_f1", "f1_fold_0", "f1_fold_2", "seconds"} <= set(c.data.metrics) for c in children)
    assert all("C" in c.data.params for c in children)
    best = min(children, key=lambda c: c.data.metrics["loss"])
    assert run.data.metrics["best_loss"] == pytest.approx(best.data.metrics["loss"])
    assert run.data.params["best_C"] == best.data.params["C"]
    assert 0 <= run.data.metrics["f1_experiment_score"] <= 1
    assert {"plots/tuning_loss.png", "plots/confusion_matrix.png"} <= artifacts(run.info.run_id, "plots")
    mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")


def trial_runs(store, parent: str) -> list:
    runs = mlflow.MlflowClient().search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    return sorted(runs, key=lambda r: int(r.data.tags[names.TAG_TRIAL]))


def best_params(tune_run) -> dict[str, str]:
    """The tuned parameters a tune run logged (``best_<name>``), by name."""
    prefix = names.BEST_PARAM_PREFIX
    return {k.removeprefix(prefix): v for k, v in tune_run.data.params.items() if k.startswith(prefix)}


def test_the_tuned_model_scores_what_its_best_trial_and_its_refit_promise(tuned, training_data):
    """Evaluated the same way, the best trial's parameters give the same CV score, and the
    refit on the whole training split gives the test score logged on the tuning run."""
    from psystock.evaluation import cv_folds, split_dataset
    from psystock.models import get_family
    from psystock.training import train_and_score
    from psystock.tuning import cv_scores

    family = get_family("logreg")
    params = family.params(best_params(tuned))
    data = load_features(training_data)
    parts = split_dataset(data, "chronological", 0.33, 4284)
    scores = cv_scores(family, parts.X_train, parts.y_train, params, cv_folds("chronological", 3), 4284)
    assert np.mean(scores) == pytest.approx(tuned.data.metrics["best_cv_f1"])
    refit = train_and_score(family, data, "chronological", 0.33, 4284, params)
    assert refit.scores["f1_experiment_score"] == pytest.approx(tuned.data.metrics["f1_experiment_score"])


# Every test-split score a model run logs (the up-rate is a fact of the split, not a score).
TEST_SCORES = [m for m in TEST_METRICS if m not in NOT_SCORES]


def assert_train_reproduces(store, tune_run, training_data):
    """`mlflow run -e train_<family> -P <best params of tune>` scores exactly what tune's refit scored."""
    family = tune_run.data.tags[names.TAG_FAMILY]
    trained = finished(mlflow_run(store, f"train_{family}", {"training_data": training_data, **best_params(tune_run)}))
    assert {m: trained.data.metrics[m] for m in TEST_SCORES} == {m: tune_run.data.metrics[m] for m in TEST_SCORES}


@pytest.mark.parametrize("family", ["logreg", "xgboost"])
def test_training_with_the_tuned_parameters_reproduces_the_tuned_scores(module_store, training_data, tuned, family):
    tune_run = (
        tuned
        if family == "logreg"
        else finished(
            mlflow_run(
                module_store, "tune", {"training_data": training_data, "family": family, "max_evals": 3, "cv_folds": 2}
            )
        )
    )
    assert_train_reproduces(module_store, tune_run, training_data)


@pytest.mark.slow
def test_keras_tunes_with_its_own_space_and_its_tuned_parameters_train_alike(module_store, training_data):
    run = finished(
        mlflow_run(
            module_store, "tune", {"training_data": training_data, "family": "keras", "max_evals": 3, "cv_folds": 2}
        )
    )
    children = trial_runs(module_store, run.info.run_id)
    assert [c.info.run_name for c in children] == ["trial_001", "trial_002", "trial_003"]
    assert all(
        {"units", "layers", "dropout", "learning_rate", "batch_size", "epochs"} <= set(c.data.params) for c in children
    )
    assert run.data.tags[names.TAG_FAMILY] == "keras"
    assert run.data.params["best_units"] == min(children, key=lambda c: c.data.metrics["loss"]).data.params["units"]
    assert_train_reproduces(module_store, run, training_data)


@pytest.mark.slow
def test_xgboost_tunes_on_spark_with_child_runs_created_by_the_workers(module_store, training_data):
    run = finished(
        mlflow_run(
            module_store,
            "tune",
            {
                "training_data": training_data,
                "family": "xgboost",
                "max_evals": 4,
                "cv_folds": 2,
                "spark_master": "local[2]",
                "parallelism": 2,
            },
        )
    )
    children = trial_runs(module_store, run.info.run_id)
    assert [c.data.tags[names.TAG_TRIAL] for c in children] == ["1", "2", "3", "4"]
    assert all(c.info.status == "FINISHED" and {"max_depth", "reg_lambda"} <= set(c.data.params) for c in children)
    best = min(children, key=lambda c: c.data.metrics["loss"])
    assert run.data.tags["best_trial_run_id"] == best.info.run_id
    assert run.data.metrics["best_loss"] == pytest.approx(best.data.metrics["loss"])
    assert run.data.metrics["trials"] == 4
    assert run.data.tags["psystock.trials_backend"] == "SparkTrials local[2], parallelism 2"
    # Each trial's run was created by a Spark worker process, not by the tune step itself.
    assert run.data.tags[names.TAG_PROCESS] not in {c.data.tags[names.TAG_PROCESS] for c in children}


def test_early_stop_ends_a_tuning_run_before_max_evals(module_store, training_data):
    run = finished(
        mlflow_run(
            module_store, "tune", {"training_data": training_data, "max_evals": 200, "cv_folds": 2, "early_stop": 5}
        )
    )
    assert run.data.tags["stopped_early"] == "true"
    assert 6 <= run.data.metrics["trials"] < 200
    assert len(trial_runs(module_store, run.info.run_id)) == run.data.metrics["trials"]
    assert {"plots/tuning_params.png", "plots/tuning_loss.png"} <= artifacts(run.info.run_id, "plots")


def gate_run(store, best_baseline: float) -> str:
    """A stand-in for a compare run: only the best baseline's score matters to the gate."""
    client = mlflow.MlflowClient()
    run = client.create_run(store.experiment_id, run_name="compare (constructed)")
    client.log_metric(run.info.run_id, "best_baseline_f1_experiment_score", best_baseline)
    client.set_tag(run.info.run_id, names.TAG_BEST_BASELINE, "baseline_always_up")
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


@pytest.fixture(scope="module")
def champion(module_store, tuned, fetched):
    """The tuned model registered by the gate against a baseline it beats."""
    refused = finished(
        mlflow_run(
            module_store,
            "register",
            {"tuned_run": tuned.info.run_id, "compare_run": gate_run(module_store, 0.99), "ticker": "BTC-USD"},
        )
    )
    registered = finished(
        mlflow_run(
            module_store,
            "register",
            {"tuned_run": tuned.info.run_id, "compare_run": gate_run(module_store, 0.0), "ticker": "BTC-USD"},
        )
    )
    return refused, registered


def test_register_refuses_a_model_below_the_best_baseline(champion, tuned):
    refused, _ = champion
    assert refused.data.tags["psystock.decision"] == "refused"
    assert "does not beat the best baseline's 0.9900" in refused.data.tags["psystock.reason"]
    assert refused.data.metrics["candidate_f1_experiment_score"] == tuned.data.metrics["f1_experiment_score"]
    assert "registered_version" not in refused.data.metrics


def test_register_moves_the_champion_alias_to_a_model_that_beats_it(champion, tuned, fetched):
    _, registered = champion
    assert registered.data.tags["psystock.decision"] == "registered"
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("psystock-BTC-USD", "champion")
    assert int(version.version) == registered.data.metrics["registered_version"] == 1  # the refusal registered nothing
    assert version.run_id == tuned.info.run_id
    assert version.tags["dataset_digest"] == fetched.data.tags[names.TAG_DATASET_DIGEST]
    assert version.tags["tuned_run_id"] == tuned.info.run_id
    model = mlflow.pyfunc.load_model("models:/psystock-BTC-USD@champion")
    assert model.metadata.signature is not None and model.metadata.saved_input_example_info is not None


def test_predict_gives_tomorrows_direction_from_the_latest_window(module_store, champion, fetched):
    prices_uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    result = mlflow_run(module_store, "predict", {"ticker": "BTC-USD", "prices": prices_uri})
    run = finished(result)
    # The last 14 labels up to 2020-12-31, oldest first, are what the champion sees.
    prices = pd.read_csv(mlflow.artifacts.download_artifacts(f"{prices_uri}/prices.csv"), parse_dates=["Date"])
    window = pd.DataFrame([going_up(prices, 0.00001).to_numpy()[-14:]], columns=[str(i) for i in range(14)])
    expected = mlflow.pyfunc.load_model("models:/psystock-BTC-USD@champion").predict(window)
    p_up = float(np.asarray(expected)[0, 1])  # logistic regression answers (P(down), P(up))
    direction = "up" if p_up > 0.5 else "down"
    assert f"BTC-USD 2021-01-01: {direction} (p={p_up:.2f})" in result.stdout
    assert run.data.metrics["probability_up"] == pytest.approx(p_up)
    assert run.data.tags["predicted_day"] == "2021-01-01"
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/predictions.csv"))
    assert table.loc[0, "direction"] == direction and table.loc[0, "as_of"] == "2020-12-31"


def test_predict_reads_the_latest_days_of_a_csv_source(module_store, champion, btc_csv, tmp_path):
    bars = pd.read_csv(btc_csv)
    source = tmp_path / "to-june.csv"
    bars[bars["Date"] <= "2020-06-30"].to_csv(source, index=False)
    result = mlflow_run(module_store, "predict", {"ticker": "BTC-USD", "source": source})
    run = finished(result)
    assert run.data.tags["predicted_day"] == "2020-07-01"  # the day after the file's last bar
    assert re.search(r"^BTC-USD 2020-07-01: (up|down) \(p=0\.\d\d\)$", result.stdout, re.MULTILINE)


def test_predict_without_a_champion_is_a_clear_error(module_store, fetched):
    prices_uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    result = mlflow_run(module_store, "predict", {"ticker": "ETH-USD", "prices": prices_uri})
    assert result.returncode != 0
    assert "predict: error: no champion model for ETH-USD yet (models:/psystock-ETH-USD@champion)" in result.stderr
    assert mlflow.get_run(result.run_id).info.status == "FAILED"


def test_the_champion_serves_predictions_over_http(module_store, champion):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
    server = subprocess.Popen(
        [
            mlflow_cli,
            "models",
            "serve",
            "-m",
            "models:/psystock-BTC-USD@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=module_store.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        window = [[1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1]]
        body = json.dumps({"dataframe_split": {"columns": [str(i) for i in range(14)], "data": window}}).encode()
        deadline = time.time() + 120
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    answer = json.loads(response.read())
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    local = mlflow.pyfunc.load_model("models:/psystock-BTC-USD@champion").predict(
        pd.DataFrame(window, columns=[str(i) for i in range(14)])
    )
    np.testing.assert_allclose(np.asarray(answer["predictions"], dtype=float), np.asarray(local, dtype=float))
