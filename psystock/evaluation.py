"""Splits, folds and the curves people look at: pure functions, no MLflow."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics
from sklearn.model_selection import StratifiedKFold, TimeSeriesSplit, train_test_split

from psystock import PsystockError
from psystock.features import FeatureSet
from psystock.scores import THRESHOLD, predictions
from psystock.validation import Split, check_cv_folds, check_split


@dataclass(frozen=True)
class TrainTest:
    """The two sides of a split: features and labels to fit on, and to score on."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split_dataset(data: FeatureSet, split: str, test_size: float, seed: int) -> TrainTest:
    """Train/test split: ``random`` is the reference's stratified shuffle,
    ``chronological`` tests on the last ``test_size`` of the rows in time."""
    check_split(split, test_size)
    n_test = math.ceil(test_size * len(data))
    if n_test >= len(data) or len(data) < 2:
        raise PsystockError(f"{len(data)} rows are too few for a test_size of {test_size}")
    if split == Split.RANDOM:
        try:
            parts = train_test_split(data.X, data.y, test_size=test_size, random_state=seed, stratify=data.y)
        except ValueError as exc:
            raise PsystockError(f"cannot make a stratified random split: {exc}") from None
        X_train, X_test, y_train, y_test = parts
    else:
        cut = len(data) - n_test
        X_train, X_test = data.X.iloc[:cut], data.X.iloc[cut:]
        y_train, y_test = data.y.iloc[:cut], data.y.iloc[cut:]
    if y_train.nunique() < 2:
        raise PsystockError("the training split holds only one class: use more data or another split")
    return TrainTest(X_train, X_test, y_train, y_test)


def cv_folds(split: str, n_folds: int) -> TimeSeriesSplit | StratifiedKFold:
    """Cross-validation folds over a training split: walk-forward for
    ``chronological`` (validation always after training), stratified and
    unshuffled for ``random`` (as ``cross_val_score`` does for a classifier),
    so neither depends on a seed."""
    check_split(split, 0.5)
    check_cv_folds(n_folds)
    if split == Split.CHRONOLOGICAL:
        return TimeSeriesSplit(n_splits=n_folds)
    return StratifiedKFold(n_splits=n_folds)


def curves(y_true: ArrayLike, probabilities: ArrayLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ROC, precision-recall and calibration curves as (x, y) arrays."""
    y_true = np.asarray(y_true)
    proba = np.asarray(probabilities, dtype=float).ravel()
    fpr, tpr, _ = metrics.roc_curve(y_true, proba)
    precision, recall, _ = metrics.precision_recall_curve(y_true, proba)
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y_true, np.clip(proba, 0, 1), n_bins=10, strategy="quantile")
    return {"roc": (fpr, tpr), "precision_recall": (recall, precision), "calibration": (predicted, observed)}


def confusion(y_true: ArrayLike, probabilities: ArrayLike, threshold: float = THRESHOLD) -> np.ndarray:
    """The 2x2 confusion matrix of thresholded predictions (rows: truth)."""
    return np.asarray(metrics.confusion_matrix(y_true, predictions(probabilities, threshold), labels=[0, 1]))
