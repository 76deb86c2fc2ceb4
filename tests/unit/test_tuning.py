import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError, cli
from psystock.models import get_family
from psystock.tuning import cv_scores, flatten, tune
from psystock.evaluation import cv_folds


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 2, (n, 4)), columns=list("0123"))
    y = pd.Series(np.where(rng.random(n) < 0.2, 1 - X["1"], X["1"]), name="4")
    return X, y


def logreg_defaults():
    return {name: cli.default_value("train_logreg", name) for name in get_family("logreg").params}


def run(seed, max_evals=4, trials=None):
    X, y = data()
    return tune(get_family("logreg"), X, y, split="chronological", n_folds=3, max_evals=max_evals, seed=seed,
                defaults=logreg_defaults(), on_trial=(trials.append if trials is not None else lambda t: None))


def test_every_trial_is_reported_with_fold_scores():
    seen = []
    result = run(seed=1, max_evals=5, trials=seen)
    assert [t.number for t in seen] == [1, 2, 3, 4, 5]
    assert all(len(t.fold_scores) == 3 for t in seen)
    assert all(t.loss == pytest.approx(1 - np.mean(t.fold_scores)) for t in seen)
    assert result.best.loss == min(t.loss for t in seen)


def test_same_seed_samples_the_same_trials():
    first = [t.params for t in run(seed=7).trials]
    second = [t.params for t in run(seed=7).trials]
    other = [t.params for t in run(seed=8).trials]
    assert first == second
    assert first != other


def test_best_loss_matches_a_fresh_cross_validation_of_its_parameters():
    result = run(seed=3)
    X, y = data()
    again = cv_scores(get_family("logreg"), X, y, result.best.params, cv_folds("chronological", 3, 3), 3)
    assert again == pytest.approx(result.best.fold_scores)


def test_max_evals_below_one_is_rejected():
    with pytest.raises(PsystockError, match="max_evals must be at least 1, got 0"):
        run(seed=1, max_evals=0)


def test_flatten_merges_nested_choices():
    assert flatten({"C": np.float64(2.0), "penalty": {"solver": "saga", "l1_ratio": 0.3}}) == {
        "C": 2.0, "solver": "saga", "l1_ratio": 0.3}
