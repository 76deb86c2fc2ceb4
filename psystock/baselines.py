"""Naive baselines a model must beat, scored on exactly the models' split: pure functions.

- ``always_up``: predicts "up" every day.
- ``persistence``: predicts that tomorrow moves like today (the last feature column).
- ``random_rate``: a seeded coin that says "up" at the training split's up-rate.

They give hard 0/1 predictions, not probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from psystock import PsystockError

BASELINES = ("always_up", "persistence", "random_rate")
FAMILY = "baseline"  # the model family of every baseline, in leaderboards and tags


def run_name(name: str) -> str:
    """The name of a baseline's run: ``baseline_always_up``."""
    return f"{FAMILY}_{name}"


def predict(name: str, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, seed: int) -> np.ndarray:
    """0/1 predictions of baseline ``name`` for the rows of ``X_test``."""
    if name == "always_up":
        return np.ones(len(X_test), dtype=int)
    if name == "persistence":
        return np.asarray(X_test.iloc[:, -1].to_numpy(dtype=int))
    if name == "random_rate":
        rng = np.random.default_rng(seed)
        return (rng.random(len(X_test)) < float(np.mean(y_train))).astype(int)
    raise PsystockError(f"unknown baseline {name!r}; baselines are {', '.join(BASELINES)}")
