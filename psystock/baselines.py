"""Naive baselines a model must beat, scored by exactly the protocol the models are: pure functions.

A baseline is one :class:`Baseline` record of :data:`BASELINES`: its name, a
one-line description (for the docs and the report) and its rule. A rule
gives hard 0/1 answers, not probabilities, from the training rows' up-rate,
the rows to answer and the step's seed. Adding a record adds a baseline to
every leaderboard, and to the tests, which iterate over the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from psystock import PsystockError
from psystock.features import YESTERDAY_UP
from psystock.names import BASELINE_FAMILY as FAMILY
from psystock.protocol import Candidate


def yesterday(X: pd.DataFrame) -> np.ndarray:
    """Each row's last known day, up (1) or not (0): the ``up_lag1`` column, or the reference
    layout's last feature column."""
    column = X[YESTERDAY_UP] if YESTERDAY_UP in X.columns else X.iloc[:, -1]
    return np.asarray(column.to_numpy(dtype=int))


@dataclass(frozen=True)
class Baseline:
    """A naive rule: ``rule(up_rate, X, seed)`` answers 0/1 for each row of ``X``."""

    name: str
    description: str
    rule: Callable[[float, pd.DataFrame, int], np.ndarray]


def _always_up(up_rate: float, X: pd.DataFrame, seed: int) -> np.ndarray:
    return np.ones(len(X), dtype=int)


def _persistence(up_rate: float, X: pd.DataFrame, seed: int) -> np.ndarray:
    return yesterday(X)


def _random_rate(up_rate: float, X: pd.DataFrame, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(len(X)) < up_rate).astype(int)


BASELINES = {
    baseline.name: baseline
    for baseline in (
        Baseline("always_up", 'predicts "up" every day', _always_up),
        Baseline("persistence", "predicts that tomorrow moves like the last known day", _persistence),
        Baseline("random_rate", 'a seeded coin that says "up" at the training rows\' up-rate', _random_rate),
    )
}


def run_name(name: str) -> str:
    """The name of a baseline's run: ``baseline_always_up``."""
    return f"{FAMILY}_{name}"


def predict(name: str, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, seed: int) -> np.ndarray:
    """0/1 predictions of baseline ``name`` for the rows of ``X_test``."""
    return candidate(name, seed).answer(float(np.mean(y_train)), X_test)


def candidate(name: str, seed: int) -> Candidate:
    """Baseline ``name`` as a protocol candidate: its "model" is the training rows' up-rate."""
    if name not in BASELINES:
        raise PsystockError(f"unknown baseline {name!r}; baselines are {', '.join(BASELINES)}")
    rule = BASELINES[name].rule
    return Candidate(
        fit=lambda X, y: float(np.mean(y)), answer=lambda up_rate, X: rule(up_rate, X, seed), probabilistic=False
    )
