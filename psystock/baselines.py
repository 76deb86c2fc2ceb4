"""Naive baselines a model must beat, scored by exactly the protocol the models are: pure functions.

- ``always_up``: predicts "up" every day.
- ``persistence``: predicts that tomorrow moves like today (the last known day's up/down).
- ``random_rate``: a seeded coin that says "up" at the training rows' up-rate.

They give hard 0/1 answers, not probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from psystock import PsystockError
from psystock.features import YESTERDAY_UP
from psystock.mlflow_io.names import BASELINE_FAMILY as FAMILY
from psystock.protocol import Candidate

BASELINES = ("always_up", "persistence", "random_rate")


def run_name(name: str) -> str:
    """The name of a baseline's run: ``baseline_always_up``."""
    return f"{FAMILY}_{name}"


def yesterday(X: pd.DataFrame) -> np.ndarray:
    """Each row's last known day, up (1) or not (0): the ``up_lag1`` column, or the reference
    layout's last feature column."""
    column = X[YESTERDAY_UP] if YESTERDAY_UP in X.columns else X.iloc[:, -1]
    return np.asarray(column.to_numpy(dtype=int))


def predict(name: str, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, seed: int) -> np.ndarray:
    """0/1 predictions of baseline ``name`` for the rows of ``X_test``."""
    return candidate(name, seed).answer(float(np.mean(y_train)), X_test)


def candidate(name: str, seed: int) -> Candidate:
    """Baseline ``name`` as a protocol candidate: its "model" is the training rows' up-rate."""
    if name not in BASELINES:
        raise PsystockError(f"unknown baseline {name!r}; baselines are {', '.join(BASELINES)}")

    def answer(up_rate: float, X: pd.DataFrame) -> np.ndarray:
        if name == "always_up":
            return np.ones(len(X), dtype=int)
        if name == "persistence":
            return yesterday(X)
        return (np.random.default_rng(seed).random(len(X)) < up_rate).astype(int)

    return Candidate(fit=lambda X, y: float(np.mean(y)), answer=answer, probabilistic=False)
