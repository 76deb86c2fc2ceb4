"""Bring your own model, end to end through the real `mlflow run`: the example plugin package
(examples/psystock-knn), installed with pip into this test's own folder, and a throwaway family
from a test module, entered through a distribution the test writes, compete in `main` beside the
built-in families; they are tuned, gated, registered and served like them; an edit of the plugin
re-runs only the steps that use it; a broken or unknown family is one clear line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from psystock import contract, names
from tests.helpers import throwaway_family
from tests.helpers.runs import PROJECT, ProjectRun, Store, finished, mlflow_run, step_run, write_plugin
from tests.helpers.serving import serve_and_invoke
from tests.helpers.synthetic import bars_from_labels, planted_labels, write

pytestmark = pytest.mark.integration

TICKER = "PLUG"
KNN_TICKER = "PLUGK"
QUICK = {"ticker": TICKER, "start": "2018-01-01", "end": "2020-12-31", "max_evals": 3, "cv_folds": 3}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of installed packages for this module's processes (on their PYTHONPATH): the
    example plugin as pip installs it from a copy of its source, and the throwaway family's
    distribution. The project's own environment is left as the lock made it."""
    root = tmp_path_factory.mktemp("plugins")
    source = shutil.copytree(PROJECT / "examples" / "psystock-knn", root / "src")
    target = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    return write_plugin(target, "psystock-throwaway", {"throwaway": f"{throwaway_family.__name__}:FAMILY"})


@pytest.fixture(scope="module")
def env(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Up days follow the day two back with probability 0.8: every family can find it."""
    bars = bars_from_labels(planted_labels(800, follow=0.8, seed=21), seed=21)
    return write(bars, tmp_path_factory.mktemp("planted") / "bars.csv")


def main(
    store: Store, csv: Path, env: dict[str, str], families: str, ticker: str = TICKER
) -> tuple[ProjectRun, dict[str, mlflow.entities.Run]]:
    params = {**QUICK, "ticker": ticker, "source": csv, "families": families}
    result = mlflow_run(store, "main", params, env=env, timeout=900)
    run = finished(result)
    steps = json.loads(run.data.tags[names.TAG_STEP_RUNS])
    return result, {"main": run, **{step: mlflow.get_run(run_id) for step, run_id in steps.items()}}


def leaderboard(runs) -> pd.DataFrame:
    compare = runs["compare"].info.run_id
    return pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{compare}/leaderboard/leaderboard.csv"))


@pytest.fixture(scope="module")
def beside_logreg(module_store, planted_csv, env):
    return main(module_store, planted_csv, env, "logreg,knn")


def test_a_plugin_family_competes_in_main_beside_the_chosen_built_in_ones(beside_logreg):
    _, runs = beside_logreg
    board = leaderboard(runs)
    assert sorted(board["family"]) == ["baseline", "baseline", "baseline", "knn", "logreg"]
    knn = board[board["family"] == "knn"].iloc[0]
    for column in ("cv_mcc_mean", "cv_mcc_std", "test_mcc", "test_mcc_ci_low", "test_mcc_ci_high", "backtest_sharpe"):
        assert np.isfinite(knn[column]), column
    assert knn["cv_mcc_mean"] > 0.3  # it found the planted signal
    trained = runs["train_knn"]
    assert trained.data.tags[names.TAG_STEP] == "train" and trained.data.params["family"] == "knn"
    assert trained.info.run_name == "knn_model" and trained.data.tags[names.TAG_FAMILY] == "knn"
    assert trained.data.tags[names.TAG_HYPERPARAMETERS] == "n_neighbors=25,weights=uniform,p=1"
    assert {"train_logreg", "train_knn"} <= set(runs) and "train_xgboost" not in runs


@pytest.mark.slow
def test_an_edit_of_the_plugin_reruns_its_steps_and_leaves_the_others_cached(
    module_store, beside_logreg, planted_csv, env, site
):
    module = site / "psystock_knn" / "__init__.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    result, runs = main(module_store, planted_csv, env, "logreg,knn")
    cached = set(runs["main"].data.tags[names.TAG_CACHED_STEPS].split(","))
    assert {"fetch_data", "build_features", "train_logreg", "baselines"} <= cached
    assert "train_knn" not in cached
    assert runs["train_knn"].info.run_id != beside_logreg[1]["train_knn"].info.run_id
    assert "train_knn: running" in result.stderr and "code" in result.stderr


@pytest.fixture(scope="module")
def knn_alone(module_store, beside_logreg, planted_csv, env):
    """main over the plugin alone, for a ticker of its own (PLUG has the champion beside_logreg
    registered, which a candidate on the same days cannot unseat): it wins, is tuned and gated,
    and becomes the champion."""
    return main(module_store, planted_csv, env, "knn", ticker=KNN_TICKER)


@pytest.mark.slow
def test_a_plugin_family_is_tuned_gated_registered_and_served(module_store, knn_alone, env):
    _, runs = knn_alone
    tune = runs["tune"]
    assert tune.data.tags[names.TAG_FAMILY] == "knn" and tune.data.metrics["trials"] == 3
    trials = mlflow.MlflowClient().search_runs(
        [module_store.experiment_id], f"tags.mlflow.parentRunId = '{tune.info.run_id}'"
    )
    assert len(trials) == 3 and all("n_neighbors" in t.data.params for t in trials)
    assert "best_n_neighbors" in tune.data.params
    register = runs["register"]
    assert register.data.tags[names.TAG_DECISION] == "registered", register.data.tags[names.TAG_REASON]
    champion = runs["main"].data.tags[names.TAG_CHAMPION]
    version = mlflow.MlflowClient().get_model_version_by_alias(f"psystock-{KNN_TICKER}", "champion")
    assert champion == f"models:/psystock-{KNN_TICKER}/{version.version}"
    assert version.tags["tuned_run_id"] == tune.info.run_id
    assert runs["predict"].info.status == "FINISHED"
    # Served as every family is, the bars in and the next day's answer out, the same as predict's.
    prices = names.run_uri(runs["fetch_data"].info.run_id, names.PRICES_DIR)
    bars = pd.read_csv(mlflow.artifacts.download_artifacts(f"{prices}/prices.csv")).loc[:, list(contract.BARS)]
    [answer] = serve_and_invoke(module_store, champion, bars.tail(30), env=env)
    assert list(answer) == list(contract.ANSWER)
    assert answer["day"] == runs["predict"].data.tags["predicted_day"]
    assert answer["p_up"] == pytest.approx(runs["predict"].data.metrics["probability_up"])


@pytest.mark.slow
def test_a_family_from_a_test_module_goes_through_train_compare_tune_and_register(
    module_store, beside_logreg, env, site, monkeypatch
):
    """The throwaway family, declared as any family is, entered by one entry point, and taken by
    every step with no code of its own."""
    _, runs = beside_logreg
    data = names.run_uri(runs["build_features"].info.run_id, names.FEATURES_DIR)
    trained = finished(
        mlflow_run(
            module_store,
            "train",
            {"training_data": data, "family": "throwaway", "hyperparameters": "max_depth=3", "cv_folds": 3},
            env=env,
        )
    )
    assert trained.info.run_name == "throwaway_model"
    assert trained.data.tags[names.TAG_HYPERPARAMETERS] == "max_depth=3,min_samples_leaf=20"
    baselines = mlflow.artifacts.load_dict(f"runs:/{runs['baselines'].info.run_id}/{names.BASELINES_FILE}")
    candidates = [trained.info.run_id, *baselines.values()]
    compare = finished(mlflow_run(module_store, "compare", {"training_runs": ",".join(candidates)}, env=env))
    assert compare.data.tags[names.TAG_WINNER_FAMILY] == "throwaway"
    tune = finished(
        mlflow_run(
            module_store, "tune", {"training_data": data, "family": "throwaway", "max_evals": 3, "cv_folds": 3}, env=env
        )
    )
    assert {"best_max_depth", "best_min_samples_leaf"} <= set(tune.data.params)
    register = finished(
        mlflow_run(
            module_store,
            "register",
            {"tuned_run": tune.info.run_id, "compare_run": compare.info.run_id, "ticker": "TREE"},
            env=env,
        )
    )
    assert register.data.tags[names.TAG_DECISION] == "registered", register.data.tags[names.TAG_REASON]
    version = mlflow.MlflowClient().get_model_version_by_alias("psystock-TREE", "champion")
    assert version.tags["tuned_run_id"] == tune.info.run_id
    # The version keeps the serving contract: this process finds the family as the steps did.
    monkeypatch.syspath_prepend(str(site))
    prices = names.run_uri(runs["fetch_data"].info.run_id, names.PRICES_DIR)
    csv = mlflow.artifacts.download_artifacts(f"{prices}/prices.csv")
    bars = pd.read_csv(csv, parse_dates=["Date"]).loc[:, list(contract.BARS)]  # from Python: days as datetimes
    answer = mlflow.pyfunc.load_model("models:/psystock-TREE@champion").predict(bars.tail(30))
    assert list(answer.columns) == list(contract.ANSWER) and 0 <= answer.loc[0, "p_up"] <= 1
    assert answer.loc[0, "day"] == (pd.Timestamp(bars["Date"].iloc[-1]) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")


@pytest.mark.slow
def test_an_unknown_family_or_bad_hyperparameters_fail_the_run_with_one_line(
    module_store, beside_logreg, env, tmp_path
):
    _, runs = beside_logreg
    data = names.run_uri(runs["build_features"].info.run_id, names.FEATURES_DIR)
    cases = [
        ({"family": "svm"}, env, "train: error: unknown model family 'svm'; choose one of logreg, xgboost, keras"),
        ({"family": "knn", "hyperparameters": "k=3"}, env, "train: error: knn has no hyper-parameters k;"),
    ]
    broken = write_plugin(tmp_path / "broken", "psystock-broken", {"broken": "psystock_gone:FAMILY"})
    cases.append(({"family": "broken"}, {"PYTHONPATH": str(broken)}, "from package psystock-broken"))
    for given, with_env, message in cases:
        result = step_run(module_store, "train", {"training_data": data, **given}, env=with_env)
        assert result.returncode == 2 and len(result.error_lines()) == 1, result.stderr[-2000:]
        assert message in result.error_lines()[0]
        assert "Traceback" not in result.stderr
        assert mlflow.get_run(result.run_id).info.status == "FAILED"
