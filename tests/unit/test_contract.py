"""The serving contract's pure half: how many bars each feature set needs, and bars to a feature row."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from psystock import PsystockError, contract, data, features
from psystock.contract import Recipe
from tests.helpers.runs import BTC_CSV


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """The committed BTC-USD bars of 2020 (a 7-day calendar), without Adj Close: the contract's columns."""
    frame = data.validate_prices(data.read_csv(str(BTC_CSV))).frame
    return frame.loc[frame["Date"] >= "2020-01-01", list(contract.BARS)].reset_index(drop=True)


@pytest.mark.parametrize("feature_set", features.FEATURE_SETS)
@pytest.mark.parametrize("window", [2, 5, 14])
def test_bars_needed_give_the_last_row_the_whole_history_gives(feature_set, window, bars):
    needed = features.bars_needed(feature_set, window)
    priced = bars.assign(**{"Adj Close": bars["Close"]})
    enough = features.known_at_close(priced.tail(needed), feature_set, window, 1e-5).iloc[-1]
    whole = features.known_at_close(priced, feature_set, window, 1e-5).iloc[-1]
    assert not enough.isna().any()
    pd.testing.assert_series_equal(enough, whole, rtol=1e-4)
    if features.FEATURE_SETS[feature_set].windows == 1:  # no memory: one bar fewer leaves a feature undefined
        fewer = features.known_at_close(priced.tail(needed - 1), feature_set, window, 1e-5)
        assert fewer.iloc[-1].isna().any()


def test_a_recipe_travels_as_the_models_configuration_and_comes_back_the_same():
    recipe = Recipe("xgboost", "technical", 10, 0.001)
    config = recipe.config()
    assert config["contract"] == contract.CONTRACT and config["bars_needed"] == 101
    assert Recipe.from_config(config) == recipe
    assert Recipe.from_config(None) is None and Recipe.from_config({"family": "logreg"}) is None
    assert recipe.packages == ("ta",) and Recipe("logreg", "updown", 14, 1e-5).packages == ()


@pytest.mark.parametrize("feature_set", features.FEATURE_SETS)
def test_bars_give_the_row_build_features_would_for_the_next_day_of_their_calendar(feature_set, bars):
    recipe = Recipe("logreg", feature_set, 14, 1e-5)
    row, day = recipe.model_input(bars)
    assert day == date(2021, 1, 1)
    expected = features.latest_features(
        bars.assign(**{"Adj Close": bars["Close"]}), feature_set, 14, pd.Timestamp(day), 1e-5
    )
    pd.testing.assert_frame_equal(row, expected)
    # The row from exactly as many bars as needed is the same (RSI's to 1e-4: it remembers every bar).
    pd.testing.assert_frame_equal(recipe.model_input(bars.tail(recipe.bars_needed))[0], expected, rtol=1e-4)


def test_too_few_bars_a_missing_column_or_a_bad_price_is_one_line_saying_what_to_send(bars):
    recipe = Recipe("logreg", "returns", 14, 1e-5)
    with pytest.raises(PsystockError, match=r"^3 bar\(s\) given; the returns features over 14 days need the last 15"):
        recipe.model_input(bars.tail(3))
    with pytest.raises(PsystockError, match="the bars lack Volume: send columns Date, Open, High, Low, Close, Volume"):
        recipe.model_input(bars.drop(columns="Volume"))
    broken = bars.tail(20).reset_index(drop=True)
    broken.loc[5, "Open"] = -1.0
    with pytest.raises(PsystockError, match="prices must be > 0"):
        recipe.model_input(broken)
    with pytest.raises(PsystockError, match="dates are not in ascending order"):
        recipe.model_input(bars.tail(20).sample(frac=1, random_state=1))


def test_the_answer_is_the_day_p_up_and_the_direction_it_names():
    assert contract.answer(date(2021, 1, 1), 0.61).to_dict("records") == [
        {"day": "2021-01-01", "p_up": 0.61, "direction": "up"}
    ]
    assert list(contract.answer(date(2021, 1, 1), 0.5).columns) == list(contract.ANSWER)
    assert contract.direction(0.5) == "down"
