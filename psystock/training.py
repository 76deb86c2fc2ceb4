"""Fit a family on the training split and score it on the test split.

Training steps and the tuning refit both go through :func:`train_and_score`,
so a baseline and a tuned model are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from psystock.evaluation import Split, classification_scores, split_dataset
from psystock.features import FeatureSet
from psystock.models import Family


@dataclass(frozen=True)
class TrainingResult:
    model: Any
    split: Split
    probabilities: np.ndarray
    scores: dict[str, float]


def train_and_score(
    family: Family,
    data: FeatureSet,
    split: str,
    test_size: float,
    seed: int,
    params: dict,
    verbose: bool = False,
    log_dir: str | None = None,
) -> TrainingResult:
    """Fit ``family`` with ``params`` on the training split; score it on the test split."""
    return fit_and_score(family, split_dataset(data, split, test_size, seed), params, seed, verbose, log_dir)


def fit_and_score(
    family: Family, parts: Split, params: dict, seed: int, verbose: bool = False, log_dir: str | None = None
) -> TrainingResult:
    """Fit ``family`` with ``params`` on a split's training side; score it on its test side."""
    model = family.fit(parts.X_train, parts.y_train, params, seed, verbose=verbose, log_dir=log_dir)
    proba = np.asarray(family.predict_proba(model, parts.X_test), dtype=float)
    return TrainingResult(model, parts, proba, classification_scores(parts.y_test, proba))


def split_summary(data: FeatureSet, parts: Split) -> dict[str, str]:
    """Tags that say which rows (and days, where known) each side of a split holds."""
    summary = {"n_train": str(len(parts.y_train)), "n_test": str(len(parts.y_test))}
    if data.dates is not None:
        dates = data.dates.reset_index(drop=True)
        for side, index in (("train", parts.y_train.index), ("test", parts.y_test.index)):
            days = dates.iloc[np.asarray(index)]
            summary[f"{side}_first_date"] = str(days.min())[:10]
            summary[f"{side}_last_date"] = str(days.max())[:10]
    return summary
