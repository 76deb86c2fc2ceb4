"""Labels and windows: pure functions from prices to the reference's training table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from psystock import PsystockError
from psystock.validation import check_window

LABEL_NAME = "going_up"
DATE_NAME = "date"


@dataclass(frozen=True)
class FeatureSet:
    """Feature matrix, labels and (where known) the day each label is about."""

    X: pd.DataFrame
    y: pd.Series
    dates: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.y)


def going_up(prices: pd.DataFrame, threshold: float = 0.00001) -> pd.Series:
    """1 on days whose ``(Close - Open) / Open`` exceeds ``threshold``, else 0, indexed by Date."""
    change = (prices["Close"] - prices["Open"]) / prices["Open"]
    labels = (change > threshold).astype("int64")
    return pd.Series(labels.to_numpy(), index=pd.DatetimeIndex(prices["Date"], name=DATE_NAME), name=LABEL_NAME)


def make_windows(labels: pd.Series, window: int) -> pd.DataFrame:
    """Rows of ``window + 1`` consecutive labels, in time order.

    Columns ``0..window-1`` are the labels of the ``window`` days before the
    label day, column ``window`` is the label day's own; the index is the
    label day. ``n`` labels give ``n - window`` rows.
    """
    check_window(window)
    if len(labels) < window + 1:
        raise PsystockError(f"{len(labels)} days of labels cannot fill one window of {window} + 1 days")
    rows = sliding_window_view(labels.to_numpy(), window + 1)
    index = labels.index[window:]
    return pd.DataFrame(rows, columns=[str(i) for i in range(window + 1)], index=index)


def latest_features(labels: pd.Series, window: int) -> pd.DataFrame:
    """The model input that predicts the day after the last label: one row,
    columns ``0..window-1`` holding the last ``window`` labels, oldest first,
    indexed by the last label's day."""
    check_window(window)
    if len(labels) < window:
        raise PsystockError(f"{len(labels)} days of labels cannot fill one window of {window} days")
    row = labels.to_numpy()[-window:]
    return pd.DataFrame([row], columns=[str(i) for i in range(window)], index=labels.index[-1:])


def feature_set(table: pd.DataFrame, dates: pd.Series | None = None) -> FeatureSet:
    """Split a training table (reference layout: last column is the label) into X and y.

    Rejects tables that are too narrow or hold anything but 0/1 values.
    """
    if table.shape[1] < 2:
        raise PsystockError(f"training data needs feature columns and a label column; got {table.shape[1]} column(s)")
    if table.empty:
        raise PsystockError("training data has no rows")
    values = table.apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or not values.isin([0, 1]).all().all():
        raise PsystockError("training data must hold only 0/1 values (the reference layout 0..N, label last)")
    if dates is not None and len(dates) != len(table):
        raise PsystockError(f"label dates ({len(dates)}) and training rows ({len(table)}) differ in number")
    values = values.astype("int64")
    return FeatureSet(values.iloc[:, :-1], values.iloc[:, -1], dates)
