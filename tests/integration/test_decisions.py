"""The decisions a researcher signs, end to end through `mlflow run . -e main` on synthetic bars:
a planted signal is found and registered, noise is not, and the holdout cannot steer a choice."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from psystock import names
from tests.helpers.runs import Store, finished, mlflow_run
from tests.helpers.synthetic import bars_from_labels, planted_labels, write

pytestmark = pytest.mark.integration

DAYS = 800  # 786 windows of 14 days: 526 in the development period, 260 in the holdout
HOLDOUT_FROM = DAYS - 260  # the first bar of the holdout's label days
# The decisions are the protocol's, whatever the families: Keras is judged in the main and step tests.
QUICK = {"start": "2018-01-01", "end": "2020-12-31", "families": "logreg,xgboost", "max_evals": 3, "cv_folds": 3}


def pipeline(store: Store, csv, ticker: str) -> dict[str, mlflow.entities.Run]:
    main = finished(mlflow_run(store, "main", {**QUICK, "source": csv, "ticker": ticker}, timeout=900))
    steps = json.loads(main.data.tags[names.TAG_STEP_RUNS])
    return {"main": main, **{step: mlflow.get_run(run_id) for step, run_id in steps.items()}}


def baseline(runs, name: str) -> dict[str, float]:
    ids = mlflow.artifacts.load_dict(f"runs:/{runs['baselines'].info.run_id}/baselines.json")
    return mlflow.get_run(ids[name]).data.metrics


@pytest.fixture(scope="module")
def planted_bars():
    return bars_from_labels(planted_labels(DAYS, follow=0.8, seed=11), seed=11)


@pytest.fixture(scope="module")
def planted(module_store, planted_bars, tmp_path_factory):
    return pipeline(module_store, write(planted_bars, tmp_path_factory.mktemp("planted") / "bars.csv"), "PLANTED")


def test_a_planted_signal_is_found_and_registered(planted):
    """Up days follow the day two back with probability 0.8: yesterday and always-up know nothing
    of it and score about nothing; the models find it, and the gate registers the tuned one."""
    for name in ("always_up", "persistence"):
        metrics = baseline(planted, name)
        assert metrics["test_balanced_accuracy"] == pytest.approx(0.5, abs=0.08)
        assert abs(metrics["test_mcc"]) < 0.15
    tuned = planted["tune"].data.metrics
    assert tuned["test_mcc"] > 0.4 and tuned["test_mcc_ci_low"] > 0.2
    register = planted["register"]
    assert register.data.tags[names.TAG_DECISION] == "registered", register.data.tags[names.TAG_REASON]
    assert register.data.metrics["improvement_ci_low"] > 0
    assert planted["main"].data.tags[names.TAG_CHAMPION] == "models:/psystock-PLANTED/1"
    assert "registered as models:/psystock-PLANTED/1" in planted["report"].data.tags[names.TAG_VERDICT]
    assert planted["predict"].info.status == "FINISHED"  # a champion exists, so main predicts


def test_noise_registers_nothing(module_store, tmp_path):
    coin = bars_from_labels(planted_labels(DAYS, follow=0.5, seed=12), seed=12)
    runs = pipeline(module_store, write(coin, tmp_path / "coin.csv"), "NOISE")
    register = runs["register"]
    assert register.data.tags[names.TAG_DECISION] == "refused"
    assert register.data.metrics["improvement_ci_low"] <= 0
    assert runs["main"].data.tags[names.TAG_CHAMPION] == "none" and "predict" not in runs
    assert runs["report"].data.tags[names.TAG_VERDICT].endswith("nothing registered.")


def test_the_holdout_cannot_steer_the_choices(module_store, planted, planted_bars, tmp_path):
    """Swap every bar of the holdout for a coin's: the family compare picks and the tuned
    parameters stay what they were; only the holdout's verdict changes."""
    swapped = planted_bars.copy()
    coin = bars_from_labels(planted_labels(DAYS, follow=0.5, seed=13), seed=13)
    later = swapped.index >= HOLDOUT_FROM
    scale = swapped.loc[HOLDOUT_FROM - 1, "Close"] / coin.loc[HOLDOUT_FROM - 1, "Close"]
    for column in ("Open", "High", "Low", "Close", "Adj Close"):
        swapped.loc[later, column] = coin.loc[later, column] * scale
    swapped.loc[later, "Volume"] = coin.loc[later, "Volume"]
    runs = pipeline(module_store, write(swapped, tmp_path / "swapped.csv"), "SWAPPED")

    assert runs["tune"].data.tags["test_first_date"] == planted_bars["Date"].iloc[HOLDOUT_FROM]
    assert runs["compare"].data.tags[names.TAG_WINNER_FAMILY] == planted["compare"].data.tags[names.TAG_WINNER_FAMILY]
    assert runs["compare"].data.tags[names.TAG_BEST_BASELINE] == planted["compare"].data.tags[names.TAG_BEST_BASELINE]

    def best(run):
        return {k: v for k, v in run.data.params.items() if k.startswith(names.BEST_PARAM_PREFIX)}

    assert best(runs["tune"]) == best(planted["tune"]) != {}
    assert runs["tune"].data.metrics["cv_mcc_mean"] == planted["tune"].data.metrics["cv_mcc_mean"]
    # The holdout is another matter: the model that found the signal finds none in the coin's days.
    assert runs["register"].data.tags[names.TAG_DECISION] == "refused"
    assert not np.isclose(runs["tune"].data.metrics["test_mcc"], planted["tune"].data.metrics["test_mcc"])
    assert pd.Timestamp(runs["tune"].data.tags["test_first_date"]) > pd.Timestamp(
        runs["tune"].data.tags["train_last_date"]
    )
