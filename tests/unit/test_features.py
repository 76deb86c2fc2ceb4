import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError
from psystock.features import feature_set, going_up, make_windows


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


def test_feature_set_rejects_values_other_than_zero_one():
    with pytest.raises(PsystockError, match="0/1"):
        feature_set(pd.DataFrame({"0": [1, 2], "1": [0, 1]}))


def test_feature_set_rejects_single_column():
    with pytest.raises(PsystockError, match="feature columns and a label"):
        feature_set(pd.DataFrame({"0": [1, 0]}))
