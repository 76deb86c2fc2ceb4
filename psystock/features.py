"""Labels and feature sets: pure functions from daily bars to training tables.

One row per pair of consecutive bars ``(s, d)``: the features are what is
known at the close of day ``s``, the label is whether day ``d`` closes above
its open. Every feature is computed from bars up to ``s`` only (and the
calendar: the weekday of ``d``), so a row never sees its own day or later
ones; ``tests/unit/test_features.py`` checks that for every set by changing
later bars.

A feature set (the ``features`` parameter) is one :class:`FeatureSetSpec`
record of :data:`FEATURE_SETS`: its name, a one-line description, the
columns known at a day's close and what each means. Adding a record adds a
feature set to ``build_features``, ``predict`` and ``main``, and to the
tests, which iterate over the registry:

- ``updown``: the reference's: the up/down labels of the ``window`` days up
  to ``s``, in the reference layout (columns ``0..window``, label last).
- ``returns``: the Open-to-Close and Close-to-Close log returns of those days,
  and whether the last of them was up.
- ``technical``: ``returns`` plus volatility, the day's High-Low range, a
  volume z-score, RSI (from ``ta``) and the weekday of the predicted day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from psystock import PsystockError
from psystock.validation import check_window

LABEL_NAME = "going_up"
DATE_NAME = "date"
OPEN_TO_CLOSE = "open_to_close"  # the label day's return, Open to Close: what a trade on it earns
CLOSE_TO_CLOSE = "close_to_close"  # the label day's return from the previous Close: what holding earns
YESTERDAY_UP = "up_lag1"  # the last known day's label, in the returns and technical sets


@dataclass(frozen=True)
class FeatureSet:
    """Feature matrix, labels and (where known) each label's day and that day's returns."""

    X: pd.DataFrame
    y: pd.Series
    dates: pd.Series | None = None
    returns: pd.DataFrame | None = None  # OPEN_TO_CLOSE and CLOSE_TO_CLOSE, a row per label

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Table:
    """A training table: feature columns then the label, indexed by the label's day, with
    each label day's returns and a description of every column."""

    frame: pd.DataFrame
    returns: pd.DataFrame
    descriptions: dict[str, str] = field(default_factory=dict)


def going_up(prices: pd.DataFrame, threshold: float = 0.00001) -> pd.Series:
    """1 on days whose ``(Close - Open) / Open`` exceeds ``threshold``, else 0, indexed by Date."""
    change = (prices["Close"] - prices["Open"]) / prices["Open"]
    labels = (change > threshold).astype("int64")
    return pd.Series(labels.to_numpy(), index=pd.DatetimeIndex(prices["Date"], name=DATE_NAME), name=LABEL_NAME)


def day_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Each day's simple returns, Open to Close and from the previous Close (NaN on the first day)."""
    index = pd.DatetimeIndex(prices["Date"], name=DATE_NAME)
    close = prices["Close"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            OPEN_TO_CLOSE: close / prices["Open"].to_numpy(dtype=float) - 1,
            CLOSE_TO_CLOSE: pd.Series(close).pct_change().to_numpy(),
        },
        index=index,
    )


def make_windows(labels: pd.Series, window: int) -> pd.DataFrame:
    """Rows of ``window + 1`` consecutive labels, in time order: the reference's table.

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


def _lagged(series: pd.Series, prefix: str, window: int) -> dict[str, pd.Series]:
    """``<prefix>_lag1`` .. ``<prefix>_lag<window>``: the value on day s, s-1, ... (known at s's close)."""
    return {f"{prefix}_lag{k}": series.shift(k - 1) for k in range(1, window + 1)}


Columns = dict[str, pd.Series]


@dataclass(frozen=True)
class FeatureSetSpec:
    """A feature set: ``columns(prices, window, threshold)`` are the features known at each day's
    close (indexed by day), ``meanings(window)`` says what each column means. With
    ``predicted_weekday`` the rows also hold the weekday of the day predicted (``dow_0..6``); the
    ``reference_layout`` is the reference's table (header ``0..window``, whole numbers)."""

    name: str
    description: str
    columns: Callable[[pd.DataFrame, int, float], Columns]
    meanings: Callable[[int], dict[str, str]]
    predicted_weekday: bool = False
    reference_layout: bool = False
    # The bars the last day's features need: ``windows`` windows and ``extra_bars`` more (a return
    # needs the day before). A smoothing that remembers every bar (RSI's) needs windows enough for
    # the older bars to weigh nothing.
    extra_bars: int = 0
    windows: int = 1
    # What a model that builds these features itself needs installed, beyond psystock's own.
    packages: tuple[str, ...] = ()


def _updown(prices: pd.DataFrame, window: int, threshold: float) -> Columns:
    labels = going_up(prices, threshold)
    return {str(i): labels.shift(window - 1 - i) for i in range(window)}


def _updown_meanings(window: int) -> dict[str, str]:
    return {str(i): f"1 if the day {window - i} days before the label day closed above its open" for i in range(window)}


def _returns(prices: pd.DataFrame, window: int, threshold: float) -> Columns:
    index = pd.DatetimeIndex(prices["Date"], name=DATE_NAME)
    open_, close = prices["Open"].to_numpy(dtype=float), prices["Close"].to_numpy(dtype=float)
    intraday = pd.Series(np.log(close / open_), index=index)
    overnight_and_day = pd.Series(np.log(close), index=index).diff()
    columns = {YESTERDAY_UP: going_up(prices, threshold)}
    return columns | _lagged(intraday, "oc", window) | _lagged(overnight_and_day, "cc", window)


def _returns_meanings(window: int) -> dict[str, str]:
    found = {YESTERDAY_UP: "1 if the day before the label day closed above its open"}
    for k in range(1, window + 1):
        found[f"oc_lag{k}"] = f"log(Close/Open) of the day {k} day(s) before the label day"
    for k in range(1, window + 1):
        found[f"cc_lag{k}"] = f"log(Close/previous Close) of the day {k} day(s) before the label day"
    return found


def _technical(prices: pd.DataFrame, window: int, threshold: float) -> Columns:
    from ta.momentum import RSIIndicator  # imported here: only this set needs it

    index = pd.DatetimeIndex(prices["Date"], name=DATE_NAME)
    close = prices["Close"].to_numpy(dtype=float)
    volume = pd.Series(prices["Volume"].to_numpy(dtype=float), index=index)
    spread = volume.rolling(window).std()
    z = (volume - volume.rolling(window).mean()) / spread
    return _returns(prices, window, threshold) | {
        "volatility": pd.Series(np.log(close), index=index).diff().rolling(window).std(),
        "range": pd.Series((prices["High"] - prices["Low"]).to_numpy(dtype=float) / close, index=index),
        # A volume that never changed (or is not reported, 0) is 0 standard deviations from its mean.
        "volume_z": z.where(spread > 0, 0.0).where(spread.notna()),
        "rsi": RSIIndicator(pd.Series(close, index=index), window=window).rsi(),
    }


def _technical_meanings(window: int) -> dict[str, str]:
    return _returns_meanings(window) | {
        "volatility": f"standard deviation of the last {window} days' Close-to-Close log returns",
        "range": "(High - Low) / Close of the day before the label day",
        "volume_z": f"that day's volume in standard deviations from the mean of the last {window} days",
        "rsi": f"relative strength index over {window} days (ta's RSIIndicator), 0-100",
    }


FEATURE_SETS = {
    spec.name: spec
    for spec in (
        FeatureSetSpec(
            "updown",
            "the reference's: the up/down labels of the `window` previous days (header `0..window`, the label last)",
            _updown,
            _updown_meanings,
            reference_layout=True,
        ),
        FeatureSetSpec(
            "returns",
            "the Open-to-Close and Close-to-Close log returns of those days (`oc_lag1..`, `cc_lag1..`) "
            "and whether the last was up (`up_lag1`)",
            _returns,
            _returns_meanings,
            extra_bars=1,
        ),
        FeatureSetSpec(
            "technical",
            "`returns` plus the `window`-day volatility, the last day's High-Low range, a volume z-score, "
            "RSI (the `ta` library's) and the weekday of the predicted day (`dow_0..dow_6`)",
            _technical,
            _technical_meanings,
            predicted_weekday=True,
            extra_bars=1,
            windows=10,  # Wilder's smoothing in RSI: bars older than ten windows of 14 weigh under 1e-4
            packages=("ta",),
        ),
    )
}
DEFAULT_FEATURES = "updown"


def check_feature_set(name: str) -> FeatureSetSpec:
    """The feature set called ``name``, or a clear error listing them."""
    if name not in FEATURE_SETS:
        raise PsystockError(f"features must be one of {', '.join(FEATURE_SETS)}, got {name!r}")
    return FEATURE_SETS[name]


def bars_needed(feature_set: str, window: int) -> int:
    """The daily bars, up to the last known day, that give its row of features as the whole history
    would: the fewest that define every feature, or, for a smoothing that remembers every bar,
    enough that the older ones change nothing that matters."""
    check_window(window)
    spec = check_feature_set(feature_set)
    return spec.windows * window + spec.extra_bars


def known_at_close(prices: pd.DataFrame, feature_set: str, window: int, threshold: float) -> pd.DataFrame:
    """For each day ``s``, the features a prediction of the next day can use, from bars up to ``s``.

    The weekday of the predicted day is added by the caller, who knows which day that is.
    """
    spec = check_feature_set(feature_set)
    check_window(window)
    index = pd.DatetimeIndex(prices["Date"], name=DATE_NAME)
    return pd.DataFrame(spec.columns(prices, window, threshold), index=index)


def descriptions(feature_set: str, window: int) -> dict[str, str]:
    """What each column of a feature set's table means."""
    spec = check_feature_set(feature_set)
    found = spec.meanings(window)
    if spec.predicted_weekday:
        found |= {f"dow_{d}": f"1 if the label day is weekday {d} (0 = Monday)" for d in range(7)}
    label = str(window) if spec.reference_layout else LABEL_NAME
    return found | {label: "the label: 1 if the label day closes above its open"}


def _weekday_columns(days: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    return {f"dow_{d}": (days.day_of_week == d).astype("int64") for d in range(7)}


def make_table(prices: pd.DataFrame, feature_set: str, window: int, threshold: float = 0.00001) -> Table:
    """The training table of a feature set: a row per label day whose features are all defined."""
    spec = check_feature_set(feature_set)
    labels = going_up(prices, threshold)
    returns = day_returns(prices)
    if spec.reference_layout:
        frame = make_windows(labels, window)
    else:
        known = known_at_close(prices, spec.name, window, threshold).shift(1)  # day s's features, on day d's row
        if spec.predicted_weekday:
            known = known.assign(**_weekday_columns(pd.DatetimeIndex(known.index)))
        frame = known.assign(**{LABEL_NAME: labels}).dropna()
        if frame.empty:
            raise PsystockError(
                f"{len(labels)} days cannot fill one row of the {spec.name} features over {window} days"
            )
    return Table(frame, returns.loc[frame.index], descriptions(spec.name, window))


def latest_features(
    prices: pd.DataFrame, feature_set: str, window: int, next_day: pd.Timestamp, threshold: float = 0.00001
) -> pd.DataFrame:
    """The model input that predicts ``next_day`` from the bars up to their last day: one row,
    the table's feature columns, indexed by the last day."""
    spec = check_feature_set(feature_set)
    needed = bars_needed(feature_set, window)
    if len(prices) < needed:
        raise PsystockError(
            f"{len(prices)} days of prices cannot define the {spec.name} features over {window} days: "
            f"give the last {needed} days or more"
        )
    row = known_at_close(prices, spec.name, window, threshold).iloc[[-1]]
    if spec.predicted_weekday:
        row = row.assign(**_weekday_columns(pd.DatetimeIndex([next_day])))
    if row.isna().any().any():
        raise PsystockError(f"the last {window} days do not define every {spec.name} feature: give more days")
    return row.astype("int64") if spec.reference_layout else row


def feature_set(table: pd.DataFrame, dates: pd.Series | None = None, returns: pd.DataFrame | None = None) -> FeatureSet:
    """Split a training table (the label is its last column) into X and y.

    Rejects tables that are too narrow, labels other than 0/1 and features
    that are not finite numbers.
    """
    if table.shape[1] < 2:
        raise PsystockError(f"training data needs feature columns and a label column; got {table.shape[1]} column(s)")
    if table.empty:
        raise PsystockError("training data has no rows")
    values = table.apply(pd.to_numeric, errors="coerce")
    label = values.iloc[:, -1]
    if label.isna().any() or not label.isin([0, 1]).all():
        raise PsystockError("the label (the last column of the training data) must hold only 0/1 values")
    X = values.iloc[:, :-1]
    if not np.isfinite(X.to_numpy(dtype=float)).all():
        raise PsystockError("training data must hold numbers in every feature column (no blanks, no text)")
    for given, what in ((dates, "label dates"), (returns, "label day returns")):
        if given is not None and len(given) != len(table):
            raise PsystockError(f"{what} ({len(given)}) and training rows ({len(table)}) differ in number")
    binary = X.isin([0, 1]).all().all()
    return FeatureSet(X.astype("int64") if binary else X.astype(float), label.astype("int64"), dates, returns)
