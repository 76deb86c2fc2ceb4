"""The reference's notebooks as one script: the yardstick a cold ``main`` is timed against.

Usage: MLFLOW_TRACKING_URI=... python -m benchmarks.book [--data CSV]

The book chapter's flow, as its notebooks run it one after another in one
kernel (``../DESIGN.md``'s reference protocol), and nothing of psystock's:
the bars and a plot of their Open price; the ``going_up`` label and the 14
previous days as features, saved as ``training_data.csv``; the random
stratified split; logistic regression, XGBoost and the Keras network, each in
its own run of ``Baseline_Predictions`` with its framework's autologging and
``f1_experiment_score``; then hyperopt's TPE on logistic regression,
``max_evals=10``, each trial a nested run with autologging on inside the
objective, scored by cross-validation on the training split, in
``Bayesian_param_tuning``. The bars are read from the CSV (this machine
cannot reach Yahoo); everything after that is the book's.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from hyperopt import Trials, fmin, hp, tpe
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import cross_val_score, train_test_split

DATA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "BTC-USD.csv"
WINDOW = 14
SEED = 4284


def prices(path: Path) -> pd.DataFrame:
    bars = pd.read_csv(path, parse_dates=["Date"]).dropna()
    return bars[(bars["Date"] >= "2014-01-01") & (bars["Date"] <= "2020-12-31")]


def training_data(bars: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """One row per 15 consecutive days: ``going_up`` of days 0..13 as features, day 14's as the label."""
    going_up = ((bars["Close"] - bars["Open"]) / bars["Open"] > 0.00001).astype(int).to_numpy()
    rows = pd.DataFrame([going_up[i : i + WINDOW + 1] for i in range(len(going_up) - WINDOW)])
    rows.columns = [str(c) for c in rows.columns]
    rows.to_csv(folder / "training_data.csv", index=False)
    return rows


def baselines(X_train, X_test, y_train, y_test) -> None:
    import tensorflow as tf
    import xgboost as xgb

    mlflow.set_experiment("Baseline_Predictions")
    mlflow.sklearn.autolog()
    with mlflow.start_run(run_name="logistic_regression_model_baseline"):
        model = LogisticRegression().fit(X_train, y_train)
        mlflow.log_metric("f1_experiment_score", f1_score(y_test, model.predict(X_test)))
    mlflow.sklearn.autolog(disable=True)

    mlflow.xgboost.autolog()
    with mlflow.start_run(run_name="xgboost_model_baseline"):
        booster = xgb.train(params={}, dtrain=xgb.DMatrix(X_train, label=y_train))
        predicted = (booster.predict(xgb.DMatrix(X_test)) > 0.5).astype(int)
        mlflow.log_metric("f1_experiment_score", f1_score(y_test, predicted))
    mlflow.xgboost.autolog(disable=True)

    mlflow.tensorflow.autolog()
    with mlflow.start_run(run_name="keras_model_baseline"):
        network = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(WINDOW,)),
                tf.keras.layers.Dense(36, activation="relu"),
                tf.keras.layers.BatchNormalization(),
                tf.keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        network.compile(
            optimizer=tf.keras.optimizers.Adam(learning_rate=0.001), loss="binary_crossentropy", metrics=["accuracy"]
        )
        network.fit(X_train, y_train, epochs=20, validation_split=0.05, shuffle=True, verbose=0)
        predicted = (network.predict(X_test, verbose=0).ravel() > 0.5).astype(int)
        mlflow.log_metric("f1_experiment_score", f1_score(y_test, predicted))
    mlflow.tensorflow.autolog(disable=True)


def tuning(X_train, y_train) -> None:
    mlflow.set_experiment("Bayesian_param_tuning")
    space = {"C": hp.loguniform("C", np.log(1e-3), np.log(1e2)), "max_iter": hp.choice("max_iter", [100, 200, 500])}

    def objective(params):
        with mlflow.start_run(nested=True):
            mlflow.sklearn.autolog()
            f1 = cross_val_score(LogisticRegression(**params), X_train, y_train, cv=5, scoring="f1").mean()
            mlflow.log_metric("f1_experiment_score", f1)
        return 1 - f1

    with mlflow.start_run(run_name="logistic_regression_tuning"):
        fmin(objective, space, algo=tpe.suggest, max_evals=10, trials=Trials(), rstate=np.random.default_rng(SEED))
    mlflow.sklearn.autolog(disable=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bars = prices(args.data)
        bars.plot(x="Date", y="Open")
        plt.savefig(Path(folder) / "open_price.png")
        rows = training_data(bars, Path(folder))
        X, y = rows.iloc[:, :WINDOW].to_numpy(), rows.iloc[:, WINDOW].to_numpy()
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.33, random_state=SEED, stratify=y)
        baselines(X_train, X_test, y_train, y_test)
        tuning(X_train, y_train)


if __name__ == "__main__":
    main()
