"""The reference protocol on the real BTC-USD bars (no MLflow): data, table, split, score."""

from datetime import date

import pandas as pd
import pytest

from psystock import data, features
from psystock.evaluation import split_dataset
from psystock.models import get_family
from psystock.training import holdout_scores


@pytest.fixture(scope="module")
def table(btc_csv):
    prices = data.load_prices(str(btc_csv), "BTC-USD", date(2014, 1, 1), date(2020, 12, 31), 15)
    return prices, features.make_windows(features.going_up(prices.frame, 0.00001), 14)


def test_reference_range_has_one_bar_a_day(table):
    prices, _ = table
    assert (prices.first_date, prices.last_date, len(prices.frame)) == ("2014-09-17", "2020-12-31", 2298)
    assert prices.frame["Date"].diff().dropna().dt.days.eq(1).all()


def test_reference_table_has_2284_windows_of_15_days(table):
    _, windows = table
    assert windows.shape == (2284, 15)
    assert windows.index[0].date() == date(2014, 10, 1)


def test_reference_split_sizes(table):
    _, windows = table
    parts = split_dataset(features.feature_set(windows.reset_index(drop=True)), "random", 0.33, 4284)
    assert (len(parts.y_train), len(parts.y_test)) == (1530, 754)
    # stratified: both sides keep the overall up-rate to within one row
    assert abs(parts.y_train.mean() - parts.y_test.mean()) < 2 / len(parts.y_test)


def test_logistic_regression_scores_near_the_reference(table):
    """The reference reports F1 ~ 0.66 for LogisticRegression() on its random split.

    Its download lacked four days of 2020 that this file has (see the data
    README), so the tables differ in a few dozen rows: agreement within 0.03.
    """
    _, windows = table
    family = get_family("logreg")
    data = features.feature_set(windows.reset_index(drop=True))
    scores = holdout_scores(family, data, "random", 0.33, 4284, family.defaults())
    assert scores["f1"] == pytest.approx(0.66, abs=0.03)


def test_always_up_beats_the_reference_winner_on_its_own_split(table):
    """The brief's warning, checked: on the reference split, always 'up' scores F1 ~ 0.71."""
    from psystock.baselines import predict
    from psystock.scores import all_scores

    _, windows = table
    data = features.feature_set(windows.reset_index(drop=True))
    parts = split_dataset(data, "random", 0.33, 4284)
    up = all_scores(
        parts.y_test, predict("always_up", parts.X_train, parts.y_train, parts.X_test, 4284), probabilistic=False
    )
    assert up["f1"] == pytest.approx(0.71, abs=0.01)
    family = get_family("logreg")
    logreg = holdout_scores(family, data, "random", 0.33, 4284, family.defaults())
    assert up["f1"] > logreg["f1"]


# The reference protocol's figures on the committed bars, to the last digit: `split=random` with the
# updown features and F1 must keep giving them, whatever psystock's defaults become.
REFERENCE_F1 = {"logreg": 0.6420737786640079, "xgboost": 0.5710928319623971}


@pytest.mark.parametrize("family_name", sorted(REFERENCE_F1))
def test_the_reference_figures_do_not_move(table, family_name):
    _, windows = table
    family = get_family(family_name)
    data = features.feature_set(windows.reset_index(drop=True))
    scores = holdout_scores(family, data, "random", 0.33, 4284, family.defaults())
    assert scores["f1"] == REFERENCE_F1[family_name]


def test_the_reference_table_is_the_updown_feature_set(table):
    prices, windows = table
    pd.testing.assert_frame_equal(features.make_table(prices.frame, "updown", 14, 0.00001).frame, windows)
