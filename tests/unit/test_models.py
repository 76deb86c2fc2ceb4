import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError, cli
from psystock.models import FAMILY_NAMES, get_family


def defaults(family):
    fam = get_family(family)
    return {name: cli.default_value(fam.entry_point, name) for name in fam.params}


def learnable(n=300, seed=0):
    """Label = feature 0 with 10% noise: any sane model beats chance."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 2, (n, 5)), columns=[str(i) for i in range(5)])
    flip = rng.random(n) < 0.1
    y = pd.Series(np.where(flip, 1 - X["0"], X["0"]), name="5")
    return X, y


def test_unknown_family_is_a_clear_error():
    with pytest.raises(PsystockError, match="unknown model family 'forest'; choose one of logreg, xgboost, keras"):
        get_family("forest")


@pytest.mark.parametrize("family", ["logreg", "xgboost"])
def test_family_learns_a_simple_rule(family):
    fam = get_family(family)
    X, y = learnable()
    params = defaults(family)
    model = fam.fit(X.iloc[:200], y.iloc[:200], params, seed=1)
    proba = np.asarray(fam.predict_proba(model, X.iloc[200:]))
    assert proba.shape == (100,)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert ((proba > 0.5) == y.iloc[200:].to_numpy()).mean() > 0.8


def test_keras_is_deterministic_for_a_seed_and_learns():
    fam = get_family("keras")
    X, y = learnable(200)
    params = defaults("keras") | {"epochs": 5}
    first = fam.predict_proba(fam.fit(X, y, params, seed=3), X)
    second = fam.predict_proba(fam.fit(X, y, params, seed=3), X)
    other = fam.predict_proba(fam.fit(X, y, params, seed=4), X)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"solver": "lbfgs", "l1_ratio": 1.0}, "supports only l1_ratio=0"),
        ({"solver": "simplex"}, "solver must be one of"),
        ({"C": 0.0}, "C must be > 0"),
        ({"class_weight": "heavy"}, "class_weight must be None or balanced"),
    ],
)
def test_logreg_rejects_invalid_parameters(change, message):
    X, y = learnable(50)
    with pytest.raises(PsystockError, match=message):
        get_family("logreg").fit(X, y, defaults("logreg") | change, seed=1)


def test_xgboost_rejects_unknown_objective():
    X, y = learnable(50)
    with pytest.raises(PsystockError, match="objective must be one of"):
        get_family("xgboost").fit(X, y, defaults("xgboost") | {"objective": "rank:map"}, seed=1)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_search_space_samples_are_valid_parameters(family):
    from hyperopt.pyll.stochastic import sample

    from psystock.tuning import flatten

    fam = get_family(family)
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = defaults(family) | flatten(sample(fam.search_space(), rng=rng))
        assert set(fam.params) <= set(params)
        if family == "logreg":
            from psystock.models.logreg import check_params

            check_params(params)
