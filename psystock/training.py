"""Fit a family on the training split and score it on the test split.

Training steps and the tuning refit both go through :func:`fit_and_score`,
so a baseline and a tuned model are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from psystock.evaluation import TrainTest, classification_scores, split_dataset
from psystock.features import FeatureSet
from psystock.mlflow_io import names
from psystock.models import Family


@dataclass(frozen=True)
class TrainingResult:
    model: Any
    split: TrainTest
    probabilities: np.ndarray
    scores: dict[str, float]


def train_and_score(
    family: Family[Any], data: FeatureSet, split: str, test_size: float, seed: int, params: Any
) -> TrainingResult:
    """Split ``data``, fit ``family`` with ``params`` on the training side and score it on the test side."""
    return fit_and_score(family, split_dataset(data, split, test_size, seed), params, seed)


def fit_and_score(
    family: Family[Any], parts: TrainTest, params: Any, seed: int, verbose: bool = False, log_dir: str | None = None
) -> TrainingResult:
    """Fit ``family`` with ``params`` on a split's training side; score it on its test side."""
    model = family.fit(parts.X_train, parts.y_train, params, seed, verbose=verbose, log_dir=log_dir)
    proba = np.asarray(family.predict_proba(model, parts.X_test), dtype=float)
    return TrainingResult(model, parts, proba, classification_scores(parts.y_test, proba))


def split_summary(data: FeatureSet, parts: TrainTest) -> dict[str, str]:
    """Tags that say which rows (and days, where known) each side of a split holds."""
    summary = {names.TAG_N_TRAIN: str(len(parts.y_train)), names.TAG_N_TEST: str(len(parts.y_test))}
    if data.dates is not None:
        dates = data.dates.reset_index(drop=True)
        for index, first, last in (
            (parts.y_train.index, names.TAG_TRAIN_FIRST_DATE, names.TAG_TRAIN_LAST_DATE),
            (parts.y_test.index, names.TAG_TEST_FIRST_DATE, names.TAG_TEST_LAST_DATE),
        ):
            days = dates.iloc[np.asarray(index)]
            summary[first] = str(days.min())[:10]
            summary[last] = str(days.max())[:10]
    return summary
