"""A model family with its parameters as a protocol :class:`~psystock.protocol.Candidate`.

Training steps, tuning trials and the tuning refit all fit through
:func:`family_candidate`, so a model and its tuned version are measured the
same way.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from psystock import names
from psystock.evaluation import TrainTest, split_dataset
from psystock.features import FeatureSet
from psystock.models import Family
from psystock.protocol import Candidate


class _FamilyFit:
    """``fit(X, y)`` of a family with fixed parameters and seed (a class, so it pickles for Spark):
    its own ``fit``, or a trainer of the family's that keeps its set-up from one fit to the next.

    The fit a step keeps (``final``) switches the framework's MLflow autologging on first, so
    the run records that fit and not the cross-validation's; it reports its progress and
    writes the family's training logs into ``log_dir``."""

    def __init__(self, family: Family[Any], params: Any, seed: int, trainer: Any = None):
        self.family, self.params, self.seed, self.trainer = family, params, seed, trainer

    def __call__(self, X: pd.DataFrame, y: pd.Series, final: bool = False, log_dir: str | None = None) -> Any:
        if final:
            self.family.autolog()
        if self.trainer is not None:
            return self.trainer(X, y, final, log_dir)
        return self.family.fit(X, y, self.params, self.seed, verbose=final, log_dir=log_dir)


def family_candidate(family: Family[Any], params: Any, seed: int, log_dir: str | None = None) -> Candidate:
    """The family with ``params``. Given ``log_dir``, the final fit (on the whole development
    period) is a step's: autologged, reporting its progress, writing training logs there."""
    fit = _FamilyFit(family, params, seed, family.trainer(params, seed) if family.trainer else None)
    final = functools.partial(fit, final=True, log_dir=log_dir) if log_dir else None
    return Candidate(fit, family.predict_proba, True, final)


def fit_on(family: Family[Any], data: FeatureSet, params: Any, seed: int) -> Any:
    """The family fit on every row of ``data``: a champion refit for production."""
    return family.fit(data.X, data.y, params, seed)


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


def holdout_scores(
    family: Family[Any], data: FeatureSet, split: str, test_size: float, seed: int, params: Any
) -> dict[str, float]:
    """The family fit on the training side of a split and scored on its test side: every score,
    by name (the reference's figures, without the protocol's folds and intervals)."""
    from psystock import scores

    parts = split_dataset(data, split, test_size, seed)
    model = family.fit(parts.X_train, parts.y_train, params, seed)
    return scores.all_scores(parts.y_test, family.predict_proba(model, parts.X_test))
