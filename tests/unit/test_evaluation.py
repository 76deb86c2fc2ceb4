import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError
from psystock.evaluation import cv_folds, split_dataset
from psystock.features import FeatureSet


def dataset(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 2, (n, 3)), columns=["0", "1", "2"])
    y = pd.Series(rng.integers(0, 2, n), name="3")
    y.iloc[:2] = [0, 1]  # both classes present whatever the seed
    return FeatureSet(X, y)


def test_chronological_split_tests_on_the_last_rows():
    parts = split_dataset(dataset(30), "chronological", 0.33, seed=1)
    assert len(parts.y_test) == 10  # ceil(0.33 * 30), as scikit-learn rounds
    assert list(parts.X_train.index) == list(range(20))
    assert list(parts.X_test.index) == list(range(20, 30))


def test_chronological_split_never_puts_a_test_row_before_a_training_row():
    parts = split_dataset(dataset(101), "chronological", 0.25, seed=7)
    assert parts.X_train.index.max() < parts.X_test.index.min()


def test_random_split_is_the_reference_stratified_split():
    data = dataset(60)
    parts = split_dataset(data, "random", 0.33, seed=4284)
    from sklearn.model_selection import train_test_split

    X_train, X_test, *_ = train_test_split(data.X, data.y, test_size=0.33, random_state=4284, stratify=data.y)
    assert list(parts.X_train.index) == list(X_train.index)
    assert list(parts.X_test.index) == list(X_test.index)


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1])
def test_split_rejects_test_size_outside_unit_interval(test_size):
    with pytest.raises(PsystockError, match="test_size must be between 0 and 1"):
        split_dataset(dataset(), "chronological", test_size, 1)


def test_split_rejects_unknown_split():
    with pytest.raises(PsystockError, match="split must be one of chronological, random"):
        split_dataset(dataset(), "shuffled", 0.3, 1)


def test_split_rejects_single_class_training_side():
    data = dataset(20)
    y = pd.Series([1] * 14 + [0] * 6, name="3")
    with pytest.raises(PsystockError, match="only one class"):
        split_dataset(FeatureSet(data.X, y), "chronological", 0.3, 1)


def test_walk_forward_folds_validate_after_training():
    folds = cv_folds("chronological", 4)
    X = np.zeros((50, 2))
    for train, valid in folds.split(X):
        assert train.max() < valid.min()


def test_cv_folds_reject_fewer_than_two():
    with pytest.raises(PsystockError, match="cv_folds must be at least 2"):
        cv_folds("random", 1)


def test_curves_span_the_unit_square():
    from psystock.evaluation import curves

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    found = curves(y, np.clip(y * 0.6 + rng.random(200) * 0.4, 0, 1))
    fpr, tpr = found["roc"]
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    predicted, observed = found["calibration"]
    assert ((predicted >= 0) & (predicted <= 1)).all() and ((observed >= 0) & (observed <= 1)).all()
