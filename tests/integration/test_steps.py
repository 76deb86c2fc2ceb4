"""The data and model steps through the real `mlflow run . -e <step> --env-manager local`, chained
as a user chains them: fetch_data's URI feeds build_features, whose URI feeds every model step."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from psystock import names
from psystock.features import going_up
from psystock.models import BUILT_IN, get_family
from tests.helpers.runs import artifacts, finished, mlflow_run

pytestmark = pytest.mark.integration

EVALUATED = (
    "cv_mcc_mean",
    "cv_mcc_std",
    "cv_mcc_fold_0",
    "cv_mcc_fold_4",
    "test_mcc",
    "test_mcc_ci_low",
    "test_mcc_ci_high",
    "f1_experiment_score",
    "test_f1",
    "test_accuracy",
    "test_balanced_accuracy",
    "block_length",
    "backtest_total_return",
    "backtest_cagr",
    "backtest_sharpe",
    "backtest_max_drawdown",
    "backtest_hit_rate",
    "backtest_exposure",
    "backtest_turnover",
    "backtest_sharpe_ci_low",
    "buy_and_hold_total_return",
    "buy_and_hold_sharpe",
)


# Every built-in family through its own training entry point (Keras for two epochs).
SHORTER = {"train_keras": {"epochs": 2}}


@pytest.fixture(scope="module")
def trained(module_store, training_data):
    return {
        info.entry_point: finished(
            mlflow_run(
                module_store, info.entry_point, {"training_data": training_data, **SHORTER.get(info.entry_point, {})}
            )
        )
        for info in BUILT_IN.values()
    }


@pytest.fixture(scope="module")
def baselines_run(module_store, training_data):
    return finished(mlflow_run(module_store, "baselines", {"training_data": training_data}))


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


def test_build_features_writes_the_reference_layout_with_each_days_returns(features, fetched):
    run = features
    assert run.data.params["features"] == "updown"
    assert run.data.metrics["rows"] == 2284
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/features/training_data.csv"))
    assert list(table.columns) == [str(i) for i in range(15)]
    assert len(table) == 2284
    days = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/features/label_dates.csv"))
    assert days["date"].iloc[0] == "2014-10-01" and days["date"].iloc[-1] == "2020-12-31"
    # The label column is going_up of the day the dates file names; its returns are that day's.
    prices = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{fetched.info.run_id}/prices/prices.csv"), parse_dates=["Date"]
    ).set_index("Date", drop=False)
    labels = going_up(prices.reset_index(drop=True), 0.00001)
    label_days = pd.to_datetime(days["date"])
    np.testing.assert_array_equal(table["14"].to_numpy(), labels.loc[label_days].to_numpy())
    np.testing.assert_array_equal(table["0"].to_numpy(), labels.iloc[:-14].to_numpy())
    np.testing.assert_allclose(
        days["open_to_close"], prices.loc[label_days, "Close"] / prices.loc[label_days, "Open"] - 1
    )
    described = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/features/columns.csv"), dtype=str
    )
    assert described["column"].tolist() == list(table.columns)


def test_build_features_makes_the_other_feature_sets(module_store, fetched):
    uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    run = finished(mlflow_run(module_store, "build_features", {"prices": uri, "features": "technical"}))
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/features/training_data.csv"))
    assert {"oc_lag1", "cc_lag14", "up_lag1", "rsi", "volume_z", "dow_0", "going_up"} <= set(table.columns)
    assert run.data.metrics["columns"] == table.shape[1] - 1


@pytest.mark.parametrize(
    ("entry_point", "run_name", "family"),
    [(info.entry_point, info.run_name, info.name) for info in BUILT_IN.values()],
    ids=list(BUILT_IN),
)
def test_training_judges_the_family_by_the_protocol_and_logs_a_loadable_model(
    trained, training_data, entry_point, run_name, family
):
    run = trained[entry_point]
    metrics = run.data.metrics
    assert run.info.run_name == run_name
    assert run.data.tags[names.TAG_FAMILY] == family
    assert run.data.params["training_data"] == training_data
    assert (run.data.params["split"], run.data.params["seed"], run.data.params["metric"]) == (
        "chronological",
        "4284",
        "mcc",
    )
    assert set(EVALUATED) <= set(metrics)
    assert metrics["test_mcc_ci_low"] <= metrics["test_mcc"] <= metrics["test_mcc_ci_high"]
    assert metrics["f1_experiment_score"] == metrics["test_f1"]
    assert np.mean([metrics[f"cv_mcc_fold_{k}"] for k in range(5)]) == pytest.approx(metrics["cv_mcc_mean"])
    # The development period: the first 1530 windows; the holdout: the last 754, from 2018-12-09 on.
    assert (run.data.tags["n_train"], run.data.tags["n_test"]) == ("1530", "754")
    assert run.data.tags["test_first_date"] > run.data.tags["train_last_date"]
    assert {
        f"plots/{name}.png"
        for name in ("confusion_matrix", "roc_curve", "precision_recall_curve", "calibration_curve", "equity_curve")
    } <= artifacts(run.info.run_id, "plots")
    folds = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/cv/folds.csv"))
    assert len(folds) == 5 and folds["mcc"].mean() == pytest.approx(metrics["cv_mcc_mean"])
    holdout = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/holdout/predictions.csv"))
    assert len(holdout) == 754 and holdout["date"].iloc[0] == run.data.tags["test_first_date"]
    trades = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/backtest/returns.csv"))
    assert (trades["position"] == holdout["prediction"]).all()  # long_flat: in on the days predicted up
    assert np.prod(1 + trades["strategy"]) - 1 == pytest.approx(metrics["backtest_total_return"])
    scores = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/metrics.json"))
    assert scores["cv_mcc_mean"] == pytest.approx(metrics["cv_mcc_mean"])

    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.signature is not None
    assert model.metadata.saved_input_example_info is not None
    window = pd.DataFrame([[1, 0] * 7], columns=[str(i) for i in range(14)])
    answer = np.asarray(model.predict(get_family(family).as_model_input(window)), dtype=float)
    if answer.shape == (1, 2):  # a scikit-learn model, served as predict_proba: (P(down), P(up))
        assert answer.sum() == pytest.approx(1.0)
    else:
        assert answer.size == 1


def test_training_autologs_the_final_fit_only(trained):
    logreg = trained["train_logreg"]
    assert "training_f1_score" in logreg.data.metrics  # scikit-learn autologging
    assert "dual" in logreg.data.params  # autologged estimator parameters, not only ours
    xgb = trained["train_xgboost"]
    assert "feature_importance_weight.png" in artifacts(xgb.info.run_id)
    keras = trained["train_keras"]
    assert keras.data.params["optimizer_name"] == "adam" and keras.data.params["epochs"] == "2"
    history = mlflow.MlflowClient().get_metric_history(keras.info.run_id, "loss")
    assert len(history) == 2  # the final fit's two epochs, not the folds'
    logs = artifacts(keras.info.run_id, "training_logs")
    assert "training_logs/training_curves.png" in logs  # per-epoch loss and accuracy
    assert any(path.startswith("training_logs/train") for path in logs)  # TensorBoard event files


def test_baselines_are_judged_as_the_models_are(baselines_run, trained):
    ids = json.loads(mlflow.artifacts.load_text(f"runs:/{baselines_run.info.run_id}/baselines.json"))
    assert sorted(ids) == ["always_up", "persistence", "random_rate"]
    children = {name: mlflow.get_run(rid) for name, rid in ids.items()}
    for name, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == baselines_run.info.run_id
        assert child.data.tags[names.TAG_FAMILY] == "baseline"
        assert child.info.run_name == f"baseline_{name}"
        assert "test_roc_auc" not in child.data.metrics  # no probabilities
        assert set(EVALUATED) <= set(child.data.metrics)
    # The same holdout days as the models: the same up-rate, and buy-and-hold over the same days.
    model = trained["train_logreg"].data.metrics
    for child in children.values():
        assert child.data.metrics["test_up_rate"] == pytest.approx(model["test_up_rate"])
        assert child.data.metrics["buy_and_hold_total_return"] == pytest.approx(model["buy_and_hold_total_return"])
    up = children["always_up"].data.metrics
    assert up["test_recall"] == 1.0 and up["test_precision"] == pytest.approx(up["test_up_rate"])
    assert up["cv_mcc_mean"] == 0.0 and up["test_mcc"] == 0.0  # a constant learns nothing, and scores so
    assert up["backtest_exposure"] == 1.0


def test_compare_ranks_by_cross_validation_and_names_the_best_model_and_baseline(module_store, trained, baselines_run):
    baseline_ids = json.loads(mlflow.artifacts.load_text(f"runs:/{baselines_run.info.run_id}/baselines.json"))
    ids = ",".join([*(r.info.run_id for r in trained.values()), *baseline_ids.values()])
    run = finished(mlflow_run(module_store, "compare", {"training_runs": ids}))
    board = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/leaderboard/leaderboard.csv"))
    assert run.data.tags[names.TAG_RANKED_BY] == "cv_mcc_mean"
    assert board["cv_mcc_mean"].is_monotonic_decreasing
    assert sorted(board["family"]) == sorted(["baseline"] * 3 + list(BUILT_IN))
    assert {"cv_mcc_std", "test_mcc", "test_mcc_ci_low", "test_mcc_ci_high", "backtest_sharpe"} <= set(board.columns)
    best = max(trained.values(), key=lambda r: r.data.metrics["cv_mcc_mean"])
    assert run.data.tags[names.TAG_WINNER_RUN] == best.info.run_id
    assert run.data.tags[names.TAG_WINNER_FAMILY] == best.data.tags[names.TAG_FAMILY]
    best_baseline = max(baseline_ids.items(), key=lambda kv: mlflow.get_run(kv[1]).data.metrics["cv_mcc_mean"])
    assert run.data.tags[names.TAG_BEST_BASELINE_RUN] == best_baseline[1]
    assert run.data.tags[names.TAG_BEST_BASELINE] == f"baseline_{best_baseline[0]}"
    assert {"leaderboard/leaderboard.md", "leaderboard/leaderboard.png"} <= artifacts(run.info.run_id, "leaderboard")


def test_compare_by_another_metric(module_store, trained):
    ids = ",".join(r.info.run_id for r in trained.values())
    run = finished(mlflow_run(module_store, "compare", {"training_runs": ids, "metric": "balanced_accuracy"}))
    best = max(trained.values(), key=lambda r: r.data.metrics["cv_balanced_accuracy_mean"])
    assert run.data.tags[names.TAG_WINNER_RUN] == best.info.run_id
    assert run.data.metrics["best_cv_balanced_accuracy_mean"] == pytest.approx(
        best.data.metrics["cv_balanced_accuracy_mean"]
    )


# The reference protocol's figures on the committed bars (tests/data/test_reference_protocol.py pins
# them in the library): a random split, the updown features and F1 give them through the steps too.
REFERENCE_F1 = {"train_logreg": 0.6420737786640079, "train_xgboost": 0.5710928319623971}


def test_the_reference_protocol_still_gives_the_reference_figures(module_store, training_data):
    reference = {"training_data": training_data, "split": "random", "metric": "f1"}
    runs = {ep: finished(mlflow_run(module_store, ep, reference)) for ep in REFERENCE_F1}
    for ep, figure in REFERENCE_F1.items():
        assert runs[ep].data.metrics["f1_experiment_score"] == figure
        assert (runs[ep].data.tags["n_train"], runs[ep].data.tags["n_test"]) == ("1530", "754")
    compare = finished(
        mlflow_run(
            module_store, "compare", {"training_runs": ",".join(r.info.run_id for r in runs.values()), "metric": "f1"}
        )
    )
    # The reference ranks by the test split's F1, and logistic regression wins.
    assert compare.data.tags[names.TAG_RANKED_BY] == "test_f1"
    assert compare.data.tags[names.TAG_WINNER_FAMILY] == "logreg"
