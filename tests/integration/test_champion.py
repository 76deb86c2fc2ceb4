"""From tuning to the champion, through the real `mlflow run`: tune, the registry gate, predict and
serving (the report: test_main's pipeline). The test chooses the gate's baselines, so both of its
answers are seen."""

import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from psystock import contract, names
from psystock.contract import Recipe
from psystock.features import latest_features
from tests.helpers.runs import artifacts, finished, mlflow_run
from tests.helpers.serving import served

pytestmark = pytest.mark.integration

# Every holdout score a model run logs.
TEST_SCORES = (
    "f1_experiment_score",
    "test_f1",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_precision",
    "test_recall",
    "test_mcc",
    "test_roc_auc",
    "test_log_loss",
    "test_mcc_ci_low",
    "test_mcc_ci_high",
    "backtest_sharpe",
    "backtest_total_return",
)


def trial_runs(store, parent: str) -> list:
    runs = mlflow.MlflowClient().search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    return sorted(runs, key=lambda r: int(r.data.tags[names.TAG_TRIAL]))


def best_params(tune_run) -> dict[str, str]:
    """The tuned parameters a tune run logged (``best_<name>``), by name."""
    prefix = names.BEST_PARAM_PREFIX
    return {k.removeprefix(prefix): v for k, v in tune_run.data.params.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def tuning(module_store, training_data):
    return mlflow_run(module_store, "tune", {"training_data": training_data, "max_evals": 3})


@pytest.fixture(scope="module")
def tuned(tuning):
    return finished(tuning)


def test_tune_logs_one_child_run_per_trial_scored_by_the_protocols_folds(module_store, tuning, tuned):
    run = tuned
    children = trial_runs(module_store, run.info.run_id)
    assert [c.info.run_name for c in children] == ["trial_001", "trial_002", "trial_003"]
    assert all(c.info.status == "FINISHED" for c in children)
    assert all(
        {"loss", "cv_mcc_mean", "cv_mcc_fold_0", "cv_mcc_fold_4", "seconds"} <= set(c.data.metrics) for c in children
    )
    for child in children:
        assert child.data.metrics["loss"] == pytest.approx(1 - child.data.metrics["cv_mcc_mean"])
    best = min(children, key=lambda c: c.data.metrics["loss"])
    assert run.data.metrics["best_loss"] == pytest.approx(best.data.metrics["loss"])
    assert run.data.params["best_C"] == best.data.params["C"]
    # The refit is judged as every model is: its CV is the best trial's, on the same folds, whose
    # answers are scored again rather than fit again (train_<family> fits them: see below).
    assert "scoring the answers its tuning trial found on the 5 folds" in tuning.stderr
    assert {k: run.data.metrics[k] for k in ("cv_mcc_mean", *(f"cv_mcc_fold_{i}" for i in range(5)))} == {
        k: best.data.metrics[k] for k in ("cv_mcc_mean", *(f"cv_mcc_fold_{i}" for i in range(5)))
    }
    assert run.data.metrics["best_cv_mcc"] == best.data.metrics["cv_mcc_mean"]
    assert set(TEST_SCORES) <= set(run.data.metrics)
    assert {"plots/tuning_loss.png", "plots/tuning_params.png", "plots/confusion_matrix.png"} <= artifacts(
        run.info.run_id, "plots"
    )
    assert "holdout/predictions.csv" in artifacts(run.info.run_id, "holdout")
    mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")


def assert_train_reproduces(store, tune_run, training_data):
    """`mlflow run -e train_<family> -P <best params of tune>` scores exactly what tune's refit scored."""
    family = tune_run.data.tags[names.TAG_FAMILY]
    params = {"training_data": training_data, "cv_folds": tune_run.data.params["cv_folds"], **best_params(tune_run)}
    trained = finished(mlflow_run(store, f"train_{family}", params))
    assert {m: trained.data.metrics[m] for m in TEST_SCORES} == {m: tune_run.data.metrics[m] for m in TEST_SCORES}
    assert trained.data.metrics["cv_mcc_mean"] == tune_run.data.metrics["cv_mcc_mean"]


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
        mlflow_run(module_store, "tune", {"training_data": training_data, "family": "keras", "max_evals": 3})
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
    assert run.data.metrics["cv_mcc_mean"] == best.data.metrics["cv_mcc_mean"]  # its answers came back from Spark
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


def constructed_baseline(store, tune_run, answer) -> str:
    """A stand-in for compare: its best baseline answered ``answer(truth)`` on the tuned model's holdout days."""
    client = mlflow.MlflowClient()
    days = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{tune_run.info.run_id}/holdout/predictions.csv"))
    baseline = client.create_run(store.experiment_id, run_name="baseline_constructed")
    answers = days.assign(answer=answer(days["truth"]), prediction=answer(days["truth"]))
    path = Path(store.root) / baseline.info.run_id / "predictions.csv"
    path.parent.mkdir()
    answers.to_csv(path, index=False)
    client.log_artifact(baseline.info.run_id, str(path), "holdout")
    client.set_terminated(baseline.info.run_id)
    compare = client.create_run(store.experiment_id, run_name="compare (constructed)")
    board = pd.DataFrame(
        {"rank": [1], "family": ["baseline"], "run_name": ["baseline_constructed"], "run_id": [baseline.info.run_id]}
    )
    client.log_text(compare.info.run_id, board.to_csv(index=False), "leaderboard/leaderboard.csv")
    client.set_tag(compare.info.run_id, names.TAG_BEST_BASELINE, "baseline_constructed")
    client.set_tag(compare.info.run_id, names.TAG_BEST_BASELINE_RUN, baseline.info.run_id)
    client.set_terminated(compare.info.run_id)
    return str(compare.info.run_id)


@pytest.fixture(scope="module")
def gate(module_store, tuned):
    """The gate twice: against a baseline as good as the model (its own answers: refused), and
    against one wrong every day (registered)."""

    def register(compare_run):
        return finished(
            mlflow_run(
                module_store,
                "register",
                {"tuned_run": tuned.info.run_id, "compare_run": compare_run, "ticker": "BTC-USD"},
            )
        )

    copy = constructed_baseline(
        module_store,
        tuned,
        lambda truth: pd.read_csv(
            mlflow.artifacts.download_artifacts(f"runs:/{tuned.info.run_id}/holdout/predictions.csv")
        )["answer"],
    )
    wrong = constructed_baseline(module_store, tuned, lambda truth: 1 - truth)
    return register(copy), register(wrong), copy, wrong


def test_register_refuses_a_model_that_does_not_surely_beat_the_baseline(gate, tuned):
    refused, *_ = gate
    metrics = refused.data.metrics
    assert refused.data.tags["psystock.decision"] == "refused"
    assert metrics["improvement"] == 0 and metrics["improvement_ci_low"] == 0 and metrics["p_value"] == 1
    reason = refused.data.tags["psystock.reason"]
    assert reason.startswith(
        "mcc on the holdout against baseline_constructed, the baseline it beats by the least: "
        "+0.000, 95% interval [+0.000, +0.000]"
    )
    assert refused.data.tags["psystock.gate_baseline"] == "baseline_constructed"
    assert metrics["improvement_ci_low_vs_baseline_constructed"] == 0
    assert reason.endswith("the interval's low end is not above 0.0")
    assert metrics["candidate_mcc"] == tuned.data.metrics["test_mcc"]
    assert "registered_version" not in metrics


def test_register_registers_a_refit_on_every_day_when_the_interval_clears_the_baseline(
    gate, tuned, fetched, training_data
):
    _, registered, _, _ = gate
    metrics = registered.data.metrics
    assert registered.data.tags["psystock.decision"] == "registered"
    assert metrics["improvement_ci_low"] > 0 and metrics["p_value"] < 0.01
    assert metrics["baseline_mcc"] == -1.0
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("psystock-BTC-USD", "champion")
    assert int(version.version) == metrics["registered_version"] == 1  # the refusal registered nothing
    # The champion is refit on development period and holdout, in the register run.
    assert version.run_id == registered.info.run_id
    assert version.tags["refit_range"] == "2014-10-01..2020-12-31" and version.tags["refit_rows"] == "2284"
    assert version.tags["holdout"] == registered.data.tags["psystock.holdout_range"] == "2018-12-09..2020-12-31"
    assert version.tags["holdout_evidence"] == registered.data.tags["psystock.reason"]
    assert version.tags["dataset_digest"] == fetched.data.tags[names.TAG_DATASET_DIGEST]
    assert version.tags["tuned_run_id"] == tuned.info.run_id
    model = mlflow.pyfunc.load_model("models:/psystock-BTC-USD@champion")
    assert model.metadata.signature is not None and model.metadata.saved_input_example_info is not None
    # The serving contract: the champion takes the bars and builds the features it was trained on.
    assert model.metadata.metadata == Recipe("logreg", "updown", 14, 1e-5).config()
    # Not the tuned run's model (fit on the development period only): the refit.
    from psystock.mlflow_io.inputs import load_features
    from psystock.models import get_family

    data = load_features(training_data)
    family = get_family("logreg")
    refit = family.fit(data.X, data.y, family.params(best_params(tuned)), 4284)
    bars = fetched_bars(fetched)
    for last in (bars.index[-1], bars.index[-200]):  # the newest day, and one inside the refit range
        answer = model.predict(bars.loc[:last, list(contract.BARS)])
        row = latest_features(bars.loc[:last], "updown", 14, pd.Timestamp(answer.loc[0, "day"]))
        assert answer.loc[0, "p_up"] == pytest.approx(float(family.predict_proba(refit, row)[0]), rel=1e-9)


def fetched_bars(fetched) -> pd.DataFrame:
    """The bars a fetch_data run logged."""
    uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    return pd.read_csv(mlflow.artifacts.download_artifacts(f"{uri}/prices.csv"), parse_dates=["Date"])


def test_predict_gives_the_next_days_direction_from_the_latest_bars(module_store, gate, fetched):
    prices_uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    result = mlflow_run(module_store, "predict", {"ticker": "BTC-USD", "prices": prices_uri})
    run = finished(result)
    # The champion is given the bars and builds its last 14 labels up to 2020-12-31 itself
    # (test_register_registers_a_refit_on_every_day... checks those answers against the refit).
    bars = fetched_bars(fetched)
    model = mlflow.pyfunc.load_model("models:/psystock-BTC-USD@champion")
    p_up = float(model.predict(bars.loc[:, list(contract.BARS)]).loc[0, "p_up"])
    direction = "up" if p_up > 0.5 else "down"
    assert f"BTC-USD 2021-01-01: {direction} (p={p_up:.2f})" in result.stdout
    assert run.data.metrics["probability_up"] == pytest.approx(p_up)
    assert run.data.tags["predicted_day"] == "2021-01-01"
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/predictions.csv"))
    assert table.loc[0, "direction"] == direction and table.loc[0, "as_of"] == "2020-12-31"


def test_predict_reads_the_latest_days_of_a_csv_source(module_store, gate, btc_csv, tmp_path):
    bars = pd.read_csv(btc_csv)
    source = tmp_path / "to-june.csv"
    bars[bars["Date"] <= "2020-06-30"].to_csv(source, index=False)
    result = mlflow_run(module_store, "predict", {"ticker": "BTC-USD", "source": source})
    run = finished(result)
    assert run.data.tags["predicted_day"] == "2020-07-01"  # the day after the file's last bar
    assert re.search(r"^BTC-USD 2020-07-01: (up|down) \(p=0\.\d\d\)$", result.stdout, re.MULTILINE)


def test_predict_builds_the_features_the_champion_was_trained_on_whatever_it_is_passed(module_store, gate, fetched):
    prices_uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    plain = finished(mlflow_run(module_store, "predict", {"ticker": "BTC-USD", "prices": prices_uri}))
    other = mlflow_run(module_store, "predict", {"ticker": "BTC-USD", "prices": prices_uri, "features": "returns"})
    assert finished(other).data.metrics["probability_up"] == plain.data.metrics["probability_up"]
    assert "builds the updown features over 14 days from the bars itself" in other.stderr


def test_predict_without_a_champion_is_a_clear_error(module_store, fetched):
    prices_uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    result = mlflow_run(module_store, "predict", {"ticker": "ETH-USD", "prices": prices_uri})
    assert result.returncode != 0
    assert "predict: error: no champion model for ETH-USD yet (models:/psystock-ETH-USD@champion)" in result.stderr
    assert mlflow.get_run(result.run_id).info.status == "FAILED"


def test_the_champion_serves_the_contract_over_http_and_refuses_too_few_bars_with_a_400(module_store, gate, fetched):
    bars = fetched_bars(fetched).loc[:, list(contract.BARS)]
    local = mlflow.pyfunc.load_model("models:/psystock-BTC-USD@champion").predict(bars.tail(30))
    with served(module_store, "models:/psystock-BTC-USD@champion") as invoke:
        ok, answer = invoke(bars.tail(30))
        short, refusal = invoke(bars.tail(3))
        lacking, missing = invoke(bars.tail(30).drop(columns="Volume"))
    assert ok == 200
    assert answer["predictions"] == local.to_dict("records")
    assert answer["predictions"][0]["day"] == "2021-01-01"
    assert (
        short == 400 and "3 bar(s) given; the updown features over 14 days need the last 14 days" in refusal["message"]
    )
    assert "Traceback" not in refusal["message"]
    assert lacking == 400 and "Volume" in missing["message"]


@pytest.fixture(scope="module")
def rematch(module_store, tuned, gate):
    """register again on the same days, with the first register's champion in place."""
    *_, wrong = gate
    return finished(
        mlflow_run(
            module_store, "register", {"tuned_run": tuned.info.run_id, "compare_run": wrong, "ticker": "BTC-USD"}
        )
    )


def test_a_candidate_that_meets_the_champion_on_no_day_it_never_saw_becomes_its_challenger(rematch, gate):
    tags, metrics = rematch.data.tags, rematch.data.metrics
    assert tags["psystock.decision"] == "challenger"
    assert tags["psystock.incumbent"] == "models:/psystock-BTC-USD/1"
    reason = (
        "0 holdout day(s) after the champion's refit range (which ends 2020-12-31): at least 30 are needed "
        "to weigh the candidate against models:/psystock-BTC-USD/1, so it stays"
    )
    assert tags["psystock.challenge"] == reason
    assert metrics["unseen_days"] == 0 and metrics["registered_version"] == 2
    client = mlflow.MlflowClient()
    assert int(client.get_model_version_by_alias("psystock-BTC-USD", "champion").version) == 1
    challenger = client.get_model_version_by_alias("psystock-BTC-USD", "challenger")
    assert int(challenger.version) == 2 and challenger.run_id == rematch.info.run_id
    assert challenger.tags["against_champion"] == reason


@pytest.fixture(scope="module")
def older_champion(module_store, tuned, training_data):
    """A champion of another name, refit only on the development period with the tuned parameters:
    the tuned model itself, registered as register registers one, its refit range ending where the
    holdout begins."""
    from psystock.features import FeatureSet
    from psystock.mlflow_io.champion import promote, recipe
    from psystock.mlflow_io.inputs import load_features
    from psystock.mlflow_io.served_model import log_served_model
    from psystock.models import get_family

    data = load_features(training_data)
    assert data.dates is not None
    last = tuned.data.tags[names.TAG_TRAIN_LAST_DATE]
    early = (data.dates.astype(str).str[:10] <= last).to_numpy()
    development = FeatureSet(data.X[early], data.y[early])
    family = get_family("logreg")
    model = family.fit(development.X, development.y, family.params(best_params(tuned)), 4284)
    made = recipe(tuned, "logreg")
    assert made is not None
    with mlflow.start_run(run_name="older champion") as run:
        log_served_model(family, model, *made)
    first = str(data.dates.iloc[0])[:10]
    promote("OLD-USD", run.info.run_id, {names.VERSION_TAG_REFIT_RANGE: f"{first}..{last}"})
    return model


def test_a_champion_is_scored_causally_on_the_days_it_never_saw_and_an_equal_candidate_does_not_replace_it(
    module_store, tuned, gate, older_champion
):
    *_, wrong = gate
    run = finished(
        mlflow_run(
            module_store, "register", {"tuned_run": tuned.info.run_id, "compare_run": wrong, "ticker": "OLD-USD"}
        )
    )
    tags, metrics = run.data.tags, run.data.metrics
    holdout = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{tuned.info.run_id}/holdout/predictions.csv"))
    # Every holdout day comes after the champion's refit range: it is asked each of them from the
    # bars before it, and, being the tuned model, answers each exactly as the candidate did.
    assert metrics["unseen_days"] == len(holdout) == 754
    assert metrics["mcc_vs_champion"] == pytest.approx(metrics["candidate_mcc_vs_champion"], abs=1e-12)
    assert metrics["candidate_mcc_vs_champion"] == pytest.approx(tuned.data.metrics["test_mcc"])
    assert metrics["improvement_vs_champion"] == pytest.approx(0, abs=1e-12)
    assert tags["psystock.decision"] == "challenger"
    assert tags["psystock.challenge"].startswith(
        "mcc on the 754 holdout day(s) after the champion's refit range (which ends 2018-12-08), "
        "2018-12-09..2020-12-31, against models:/psystock-OLD-USD/1: +0.000"
    )
    assert tags["psystock.challenge"].endswith("the interval's low end is not above 0.0")
    client = mlflow.MlflowClient()
    assert int(client.get_model_version_by_alias("psystock-OLD-USD", "champion").version) == 1
    assert int(client.get_model_version_by_alias("psystock-OLD-USD", "challenger").version) == 2
