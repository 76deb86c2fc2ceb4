"""Daily price bars: read them from Yahoo (yfinance) or a CSV, and validate them.

Every source is normalised to one frame: a ``Date`` column of tz-naive days
followed by ``Open, High, Low, Close, Adj Close, Volume`` -- Yahoo's layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from psystock import PsystockError

log = logging.getLogger(__name__)

PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
COLUMNS = ("Date", *PRICE_COLUMNS, "Volume")
YAHOO = "yahoo"
_SHOWN = 3  # offending values quoted in an error message
MAX_GAP_DAYS = 31  # longer than any market closure; weekends and holidays are far shorter


@dataclass(frozen=True)
class Prices:
    """Validated daily bars and what validation noticed without rejecting them."""

    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def first_date(self) -> str:
        return str(self.frame["Date"].iloc[0].date().isoformat())

    @property
    def last_date(self) -> str:
        return str(self.frame["Date"].iloc[-1].date().isoformat())


def parse_day(text: str, name: str) -> date:
    """An ISO day (``2020-12-31``) from a parameter, or a clear error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PsystockError(f"{name} must be a date like 2020-12-31, got {text!r}") from None


def download_yahoo(ticker: str, start: date, end: date) -> pd.DataFrame:
    """Daily bars from Yahoo through ``yfinance.download``, ``end`` inclusive."""
    import yfinance as yf  # imported here: only this source needs it

    log.info("downloading %s from Yahoo, %s to %s", ticker, start, end)
    raw = yf.download(
        ticker,
        start=start.isoformat(),
        end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
        interval="1d",
        auto_adjust=False,
        progress=False,
    )
    if raw is None or raw.empty:
        raise PsystockError(
            f"Yahoo returned no prices for {ticker!r} between {start} and {end}: "
            "check the ticker symbol and the date range"
        )
    return from_yfinance(raw, ticker)


def from_yfinance(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Yahoo's layout from what ``yf.download`` returns.

    Current yfinance returns ``(Price, Ticker)`` MultiIndex columns, a
    ``Date`` index that may be tz-aware, and no ``Adj Close`` when
    ``auto_adjust`` is on.
    """
    frame = raw.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        tickers = frame.columns.get_level_values(-1)
        frame = frame.xs(ticker, axis=1, level=-1) if ticker in tickers else frame.droplevel(-1, axis=1)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    frame.index = index.normalize()
    frame = frame.rename_axis("Date").reset_index()
    if "Adj Close" not in frame.columns and "Close" in frame.columns:
        frame["Adj Close"] = frame["Close"]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise PsystockError(f"Yahoo's answer for {ticker!r} lacks columns {', '.join(missing)}")
    return frame[list(COLUMNS)]


def read_csv(location: str) -> pd.DataFrame:
    """Read a CSV in Yahoo's layout (a path or an http(s)/file URL) as text columns."""
    try:
        return pd.read_csv(location, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise PsystockError(f"price CSV not found: {location}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty file"
        raise PsystockError(f"cannot parse price CSV {location}: {first}") from None


def validate_prices(raw: pd.DataFrame, min_rows: int = 1) -> Prices:
    """Check and normalise bars in Yahoo's layout.

    Rejects missing columns, unparseable, duplicated or unsorted dates,
    non-numeric, missing or non-positive prices and fewer than ``min_rows``
    rows. Bars whose High/Low disagree with Open/Close are kept and counted
    in the returned warnings.
    """
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise PsystockError(f"price data lacks columns {', '.join(missing)}; expected {','.join(COLUMNS)}")
    frame = pd.DataFrame({"Date": _parse_dates(raw["Date"])})
    _check_date_order(frame["Date"])
    for column in (*PRICE_COLUMNS, "Volume"):
        frame[column] = _parse_numbers(raw[column], column, frame["Date"])
    positive = list(PRICE_COLUMNS)
    bad = frame[(frame[positive] <= 0).any(axis=1)]
    if len(bad):
        raise PsystockError(f"prices must be > 0; {len(bad)} rows are not, first on {_days(bad['Date'])}")
    if (frame["Volume"] < 0).any():
        raise PsystockError(f"Volume must be >= 0; negative on {_days(frame.loc[frame['Volume'] < 0, 'Date'])}")
    if len(frame) < min_rows:
        raise PsystockError(f"only {len(frame)} rows of prices; at least {min_rows} are needed")
    return Prices(frame.reset_index(drop=True), _range_warnings(frame))


def select_range(prices: Prices, start: date, end: date, min_rows: int = 1) -> Prices:
    """The bars from ``start`` to ``end``, both inclusive."""
    if start > end:
        raise PsystockError(f"start {start} is after end {end}")
    days = prices.frame["Date"]
    inside = prices.frame[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
    if len(inside) < min_rows:
        span = f"{prices.first_date} to {prices.last_date}" if len(prices.frame) else "nothing"
        raise PsystockError(
            f"{len(inside)} rows between {start} and {end} (the data covers {span}); "
            f"at least {min_rows} are needed: widen the date range"
        )
    _check_gaps(inside["Date"])
    return Prices(inside.reset_index(drop=True), _range_warnings(inside))


def weekdays_only(days: pd.Series | pd.DatetimeIndex) -> bool:
    """Whether a series trades on weekdays only (an exchange's calendar) rather than every day."""
    weekday = pd.DatetimeIndex(days).dayofweek
    return bool(len(weekday)) and float(np.mean(weekday >= 5)) <= 0.05


def next_trading_day(days: pd.Series | pd.DatetimeIndex) -> date:
    """The day after the last of ``days`` in the series' own calendar: the next weekday for a
    weekday series, the next day for one that trades every day. Holidays are not known here,
    so none is skipped."""
    last: date = pd.DatetimeIndex(days)[-1].date()
    step = timedelta(days=1)
    following = last + step
    if weekdays_only(days):
        while following.weekday() >= 5:
            following += step
    return following


def _check_gaps(days: pd.Series) -> None:
    """Refuse holes longer than ``MAX_GAP_DAYS``: a window would join days that far apart as neighbours."""
    gaps = days.diff()
    long = np.flatnonzero(gaps > pd.Timedelta(days=MAX_GAP_DAYS))
    if len(long):
        i = long[0]
        raise PsystockError(
            f"{len(long)} gaps of more than {MAX_GAP_DAYS} days in the prices, the first from "
            f"{days.iloc[i - 1].date()} to {days.iloc[i].date()} ({gaps.iloc[i].days} days): choose a start "
            "and end inside one unbroken stretch"
        )


def load_prices(source: str, ticker: str, start: date, end: date, min_rows: int) -> Prices:
    """Validated bars of ``ticker`` from ``start`` to ``end`` out of ``source``."""
    raw = download_yahoo(ticker, start, end) if source == YAHOO else read_csv(source)
    return select_range(validate_prices(raw), start, end, min_rows)


def _parse_dates(column: pd.Series) -> pd.Series:
    # Yahoo writes days as ISO dates, sometimes with a time and UTC offset
    # ("2020-01-02 00:00:00-05:00"); the first ten characters are the local day.
    text = column.astype(str).str.strip().str.slice(0, 10)
    days = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = days.isna()
    if bad.any():
        shown = ", ".join(f"row {i + 2}: {column.iloc[i]!r}" for i in np.flatnonzero(bad)[:_SHOWN])
        raise PsystockError(f"{int(bad.sum())} unparseable dates ({shown}); expected ISO dates like 2020-12-31")
    return days


def _check_date_order(days: pd.Series) -> None:
    duplicated = days[days.duplicated()]
    if len(duplicated):
        raise PsystockError(f"{len(duplicated)} duplicated dates, first {_days(duplicated)}: keep one row per day")
    backwards = np.flatnonzero(days.diff() < pd.Timedelta(0))
    if len(backwards):
        i = backwards[0]
        raise PsystockError(
            f"dates are not in ascending order: {days.iloc[i].date()} follows {days.iloc[i - 1].date()} "
            f"(row {i + 2}); sort the file by Date"
        )


def _parse_numbers(column: pd.Series, name: str, days: pd.Series) -> pd.Series:
    text = column.astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
    missing = text.isin(["", "nan", "NaN", "null", "None", "NA", "<NA>"]) | column.isna()
    if missing.any():
        raise PsystockError(f"{name} is missing on {int(missing.sum())} days, first {_days(days[missing])}")
    bad = numbers.isna()
    if bad.any():
        shown = ", ".join(f"{days.iloc[i].date()}: {text.iloc[i]!r}" for i in np.flatnonzero(bad)[:_SHOWN])
        raise PsystockError(f"{name} has {int(bad.sum())} non-numeric values ({shown})")
    return numbers.astype(float)


def _range_warnings(frame: pd.DataFrame) -> list[str]:
    top = frame[["Open", "Close"]].max(axis=1)
    bottom = frame[["Open", "Close"]].min(axis=1)
    odd = (frame["High"] < top) | (frame["Low"] > bottom) | (frame["High"] < frame["Low"])
    if not odd.any():
        return []
    return [f"{int(odd.sum())} bars have High/Low outside Open/Close, first {_days(frame.loc[odd, 'Date'])}"]


def _days(days: pd.Series) -> str:
    return ", ".join(d.date().isoformat() for d in days.iloc[:_SHOWN])
