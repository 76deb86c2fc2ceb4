import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError
from psystock.baselines import BASELINES, candidate, predict
from psystock.scores import all_scores

# Five test days; the last feature column is "today", the label is "tomorrow".
X_TEST = pd.DataFrame({"0": [0, 1, 1, 0, 1], "1": [1, 1, 0, 0, 1]})
Y_TEST = pd.Series([1, 1, 0, 1, 1])
X_TRAIN = pd.DataFrame({"0": [0, 1, 0, 1], "1": [1, 0, 1, 1]})
Y_TRAIN = pd.Series([1, 1, 1, 0])


def test_always_up_scores_what_arithmetic_says():
    pred = predict("always_up", X_TRAIN, Y_TRAIN, X_TEST, seed=1)
    assert pred.tolist() == [1, 1, 1, 1, 1]
    scores = all_scores(Y_TEST, pred, probabilistic=False)
    # precision = up-rate 4/5, recall 1 -> F1 = 2 * 0.8 / 1.8; a constant has no correlation
    assert scores["f1"] == pytest.approx(2 * 0.8 / 1.8)
    assert scores["accuracy"] == pytest.approx(0.8)
    assert scores["mcc"] == 0.0


def test_persistence_repeats_the_last_known_day():
    pred = predict("persistence", X_TRAIN, Y_TRAIN, X_TEST, seed=1)
    assert pred.tolist() == [1, 1, 0, 0, 1]
    assert all_scores(Y_TEST, pred, probabilistic=False)["accuracy"] == pytest.approx(0.8)


def test_persistence_reads_yesterday_by_name_in_the_other_feature_sets():
    X = pd.DataFrame({"up_lag1": [0, 1, 1], "oc_lag1": [-0.1, 0.2, 0.3]})
    assert predict("persistence", X, Y_TRAIN, X, seed=1).tolist() == [0, 1, 1]


def test_random_rate_is_seeded_and_follows_the_training_up_rate():
    big = pd.DataFrame({"0": np.zeros(20000, dtype=int)})
    first = predict("random_rate", X_TRAIN, Y_TRAIN, big, seed=5)
    assert first.tolist() == predict("random_rate", X_TRAIN, Y_TRAIN, big, seed=5).tolist()
    assert first.tolist() != predict("random_rate", X_TRAIN, Y_TRAIN, big, seed=6).tolist()
    assert first.mean() == pytest.approx(0.75, abs=0.01)


def test_baselines_are_candidates_whose_model_is_the_up_rate():
    coin = candidate("random_rate", 3)
    assert coin.fit(X_TRAIN, Y_TRAIN) == 0.75 and not coin.probabilistic


def test_unknown_baseline_is_an_error():
    with pytest.raises(PsystockError, match="unknown baseline 'coin'"):
        predict("coin", X_TRAIN, Y_TRAIN, X_TEST, seed=1)


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_answers_each_row_with_0_or_1_the_same_for_a_seed(name):
    assert BASELINES[name].description
    first = predict(name, X_TRAIN, Y_TRAIN, X_TEST, seed=2)
    assert len(first) == len(X_TEST) and set(first.tolist()) <= {0, 1}
    assert first.tolist() == predict(name, X_TRAIN, Y_TRAIN, X_TEST, seed=2).tolist()
