"""What yfinance's ``Ticker.history``, the one call psystock makes to Yahoo, returns: for the tests
that replace it (the unit tests' ``history`` fixture)."""

from __future__ import annotations

import pandas as pd

from tests.helpers.runs import FIXTURES

NEW_YORK = "America/New_York"


def history_frame(csv=FIXTURES / "SPY.csv", tz=NEW_YORK, rows=None) -> pd.DataFrame:
    """What ``yf.Ticker(t).history(interval="1d", auto_adjust=False, actions=False)`` returns:
    a ``Date`` index at midnight in the exchange's time zone, Yahoo's columns, int64 volume."""
    bars = pd.read_csv(csv).iloc[slice(rows)]
    index = pd.DatetimeIndex(pd.to_datetime(bars["Date"]), name="Date").tz_localize(tz)
    frame = bars.drop(columns=["Date"]).set_index(index)
    return frame.astype({"Volume": "int64"})
