import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError
from psystock.features import (
    FEATURE_SETS,
    day_returns,
    descriptions,
    feature_set,
    going_up,
    latest_features,
    make_table,
    make_windows,
)


def prices(opens, closes, start="2020-01-01"):
    return pd.DataFrame({"Date": pd.date_range(start, periods=len(opens), freq="D"), "Open": opens, "Close": closes})


def test_going_up_uses_relative_change_above_threshold():
    frame = prices([100.0, 100.0, 100.0, 100.0], [101.0, 100.0, 100.002, 99.0])
    labels = going_up(frame, threshold=0.00001)
    assert labels.tolist() == [1, 0, 1, 0]
    assert labels.index[0] == pd.Timestamp("2020-01-01")


def test_going_up_threshold_is_strict():
    frame = prices([100.0, 100.0], [102.0, 100.0005])
    assert going_up(frame, threshold=0.02).tolist() == [0, 0]
    assert going_up(frame, threshold=0.0199).tolist() == [1, 0]


def test_windows_label_is_day_after_features():
    days = pd.date_range("2020-01-01", periods=6, freq="D")
    labels = pd.Series([1, 0, 0, 1, 1, 0], index=days)
    table = make_windows(labels, window=3)
    assert list(table.columns) == ["0", "1", "2", "3"]
    assert table.values.tolist() == [[1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 0]]
    # Each row is indexed by the day its label (last column) is about.
    assert list(table.index) == list(days[3:])
    for day, row in table.iterrows():
        assert row["3"] == labels[day]


def test_windows_count_is_days_minus_window():
    labels = pd.Series(np.arange(20) % 2, index=pd.date_range("2020-01-01", periods=20))
    assert len(make_windows(labels, 14)) == 6


def test_windows_do_not_mutate_input():
    labels = pd.Series([1, 0, 1, 1], index=pd.date_range("2020-01-01", periods=4))
    before = labels.copy()
    make_windows(labels, 2)
    pd.testing.assert_series_equal(labels, before)


@pytest.mark.parametrize("window", [0, -3])
def test_windows_reject_window_below_one(window):
    labels = pd.Series([1, 0, 1], index=pd.date_range("2020-01-01", periods=3))
    with pytest.raises(PsystockError, match="window must be at least 1"):
        make_windows(labels, window)


def test_windows_reject_too_few_days():
    labels = pd.Series([1, 0, 1], index=pd.date_range("2020-01-01", periods=3))
    with pytest.raises(PsystockError, match="cannot fill one window"):
        make_windows(labels, 3)


def test_feature_set_takes_last_column_as_label():
    table = pd.DataFrame({"0": [1, 0], "1": [0, 0], "2": [1, 0]})
    data = feature_set(table)
    assert list(data.X.columns) == ["0", "1"]
    assert data.y.tolist() == [1, 0]
    assert data.dates is None


def test_feature_set_rejects_a_label_other_than_zero_one():
    with pytest.raises(PsystockError, match=r"label .* must hold only 0/1"):
        feature_set(pd.DataFrame({"0": [1, 0], "1": [0, 2]}))


def test_feature_set_takes_real_valued_features_but_not_text_or_blanks():
    data = feature_set(pd.DataFrame({"ret": [0.01, -0.02], "going_up": [1, 0]}))
    assert data.X["ret"].dtype == float
    with pytest.raises(PsystockError, match="numbers in every feature column"):
        feature_set(pd.DataFrame({"ret": ["x", "0.1"], "going_up": [1, 0]}))
    with pytest.raises(PsystockError, match="numbers in every feature column"):
        feature_set(pd.DataFrame({"ret": [np.nan, 0.1], "going_up": [1, 0]}))


def test_feature_set_rejects_single_column():
    with pytest.raises(PsystockError, match="feature columns and a label"):
        feature_set(pd.DataFrame({"0": [1, 0]}))


def bars(n=120, seed=0, start="2020-01-01", freq="D"):
    """Daily bars with every column a feature set reads."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    return pd.DataFrame(
        {
            "Date": pd.date_range(start, periods=n, freq=freq),
            "Open": open_,
            "High": np.maximum(open_, close) * 1.01,
            "Low": np.minimum(open_, close) * 0.99,
            "Close": close,
            "Adj Close": close,
            "Volume": rng.integers(1_000, 5_000, n).astype(float),
        }
    )


def test_updown_is_the_reference_table():
    prices = bars()
    table = make_table(prices, "updown", 14)
    pd.testing.assert_frame_equal(table.frame, make_windows(going_up(prices), 14))
    assert list(table.returns.index) == list(table.frame.index)


@pytest.mark.parametrize("name", list(FEATURE_SETS))
@pytest.mark.parametrize("cut", [30, 57, 100])
def test_every_feature_set_is_causal(name, cut):
    """Change every bar after day t: each row whose label day is t or earlier stays the same."""
    prices = bars()
    changed = prices.copy()
    later = changed.index > cut
    rng = np.random.default_rng(cut)
    for column in ("Open", "High", "Low", "Close", "Adj Close", "Volume"):
        changed.loc[later, column] = changed.loc[later, column] * rng.uniform(0.5, 1.5, later.sum())
    day = prices["Date"].iloc[cut]
    before = make_table(prices, name, 10).frame
    after = make_table(changed, name, 10).frame
    pd.testing.assert_frame_equal(before.loc[:day], after.loc[:day])
    assert not before.loc[day:].iloc[1:].equals(after.loc[day:].iloc[1:])  # the change did reach later rows


@pytest.mark.parametrize("name", list(FEATURE_SETS))
def test_the_latest_row_is_the_tables_next_row(name):
    """What predict feeds a model for the day after the last bar is the row the table would hold for it."""
    prices = bars()
    table = make_table(prices, name, 10).frame
    next_day = prices["Date"].iloc[-1]
    latest = latest_features(prices.iloc[:-1], name, 10, next_day)
    pd.testing.assert_frame_equal(
        latest.reset_index(drop=True), table.iloc[[-1], :-1].reset_index(drop=True), check_dtype=False
    )


def test_every_column_is_described():
    for name in FEATURE_SETS:
        table = make_table(bars(), name, 7)
        assert list(table.descriptions) == list(table.frame.columns), name


def test_returns_set_holds_lagged_log_returns_and_yesterday():
    prices = bars(40)
    frame = make_table(prices, "returns", 3).frame
    d = frame.index[5]
    s = prices.index[prices["Date"] == d][0] - 1  # the day before the label day
    assert frame.loc[d, "oc_lag1"] == pytest.approx(np.log(prices["Close"][s] / prices["Open"][s]))
    assert frame.loc[d, "cc_lag2"] == pytest.approx(np.log(prices["Close"][s - 1] / prices["Close"][s - 2]))
    assert frame.loc[d, "up_lag1"] == going_up(prices).iloc[s]
    assert frame.loc[d, "going_up"] == going_up(prices).loc[d]


def test_technical_set_adds_indicators_and_the_predicted_weekday():
    frame = make_table(bars(), "technical", 14).frame
    assert {"volatility", "range", "volume_z", "rsi", "dow_0", "dow_6"} <= set(frame.columns)
    assert frame["rsi"].between(0, 100).all()
    weekday = pd.DatetimeIndex(frame.index).dayofweek
    assert (frame["dow_3"] == (weekday == 3)).all()


def test_day_returns_are_the_days_own():
    prices = bars(5)
    returns = day_returns(prices)
    assert returns["open_to_close"].iloc[2] == pytest.approx(prices["Close"][2] / prices["Open"][2] - 1)
    assert returns["close_to_close"].iloc[2] == pytest.approx(prices["Close"][2] / prices["Close"][1] - 1)


def test_unknown_feature_set_is_a_clear_error():
    with pytest.raises(PsystockError, match="features must be one of updown, returns, technical"):
        descriptions("candles", 5)
