"""Daily price bars: read them from Yahoo (yfinance) or a CSV, and validate them.

Every source is normalised to one frame: a ``Date`` column of tz-naive days
followed by ``Open, High, Low, Close, Adj Close, Volume`` -- Yahoo's layout.

Real exports are read as they are, each liberty taken named in one warning:
Yahoo's ``null`` rows for days it lacked are dropped; the three header rows
``yf.download(...).to_csv()`` writes (``Price`` / ``Ticker`` / ``Date``) are
read, the ticker row checked against the ticker asked for; a file without
``Adj Close`` (auto-adjusted) uses ``Close``; a file newest-first is reversed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from psystock import PsystockError, names
from psystock.names import YAHOO

log = logging.getLogger(__name__)

PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "Volume")
COLUMNS = ("Date", *VALUE_COLUMNS)
_SHOWN = 3  # offending values quoted in an error message
MAX_GAP_DAYS = 31  # longer than any market closure; weekends and holidays are far shorter
# What exports write for a value they lack: Yahoo's CSV "null", pandas' empty cell or "NaN".
MISSING = frozenset({"", "nan", "NaN", "null", "None", "NA", "<NA>", "N/A"})
# When the session of a weekday exchange has closed, in its own time zone: 16:00 closes
# New York, and every major exchange has closed by 17:30. Until then today's bar is partial.
SESSION_CLOSE = time(17, 30)


@dataclass(frozen=True)
class Prices:
    """Validated daily bars, and what reading them changed or noticed without rejecting them."""

    frame: pd.DataFrame
    notes: tuple[str, ...] = ()  # what reading the source changed: a reversed file, a missing Adj Close
    dropped_days: tuple[str, ...] = ()  # days of rows without a single value, left out
    reversed: bool = False  # the source listed the newest day first

    @property
    def first_date(self) -> str:
        return str(self.frame["Date"].iloc[0].date().isoformat())

    @property
    def last_date(self) -> str:
        return str(self.frame["Date"].iloc[-1].date().isoformat())

    @property
    def warnings(self) -> list[str]:
        """One line per liberty taken or oddity kept."""
        found = list(self.notes)
        if self.dropped_days:
            found.append(
                f"dropped {len(self.dropped_days)} rows without prices (Yahoo's null rows for days it lacks): "
                f"{_listed(self.dropped_days)}"
            )
        return found + _range_warnings(self.frame)

    def tags(self, ticker: str) -> dict[str, str]:
        """What a fetch run records of the bars: the ticker, their range, and every warning."""
        return {
            names.TAG_TICKER: ticker,
            names.TAG_FIRST_DATE: self.first_date,
            names.TAG_LAST_DATE: self.last_date,
            names.TAG_RANGE_WARNINGS: str(len(self.warnings)),
            names.TAG_DATA_WARNINGS: "\n".join(self.warnings)[: names.TAG_LIMIT],
            names.TAG_DROPPED_ROWS: str(len(self.dropped_days)),
            names.TAG_DROPPED_DAYS: ",".join(self.dropped_days)[: names.TAG_LIMIT],
            names.TAG_REVERSED: str(self.reversed).lower(),
        }


@dataclass(frozen=True)
class RawPrices:
    """Bars as a source gave them: Yahoo's columns, values still as given, and what reading them changed."""

    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def parse_day(text: str, name: str) -> date:
    """An ISO day (``2020-12-31``) from a parameter, or a clear error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PsystockError(f"{name} must be a date like 2020-12-31, got {text!r}") from None


# --- Yahoo -------------------------------------------------------------------------------


def download_yahoo(ticker: str, start: date, end: date, now: datetime | None = None) -> RawPrices:
    """Daily bars from Yahoo through ``yfinance.Ticker.history``, ``end`` inclusive.

    yfinance is told to raise rather than log its errors, so that a failure says
    why (:func:`yahoo_failure`). Today's bar is left out until its session has
    closed (:func:`partial_bar`).
    """
    import yfinance as yf  # imported here: only this source needs it

    log.info("downloading %s from Yahoo, %s to %s", ticker, start, end)
    yf.config.debug.hide_exceptions = False
    yahoo_log = logging.getLogger("yfinance")
    yahoo_log.addFilter(_without_crumb)
    try:
        raw = yf.Ticker(ticker).history(
            start=start.isoformat(),
            end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
            interval="1d",
            auto_adjust=False,
            actions=False,
        )
    except Exception as exc:
        failure = yahoo_failure(exc, ticker, start, end)
        if failure is None:
            raise
        raise failure from None
    finally:
        yahoo_log.removeFilter(_without_crumb)
    if raw is None or raw.empty:
        raise no_prices(ticker, start, end)
    warnings = []
    if partial_bar(pd.DatetimeIndex(raw.index), now or datetime.now().astimezone()):
        day = pd.DatetimeIndex(raw.index)[-1].date()
        warnings.append(f"left out the bar of {day}: its session has not closed, so Yahoo's bar is partial")
        raw = raw.iloc[:-1]
        if raw.empty:
            raise no_prices(ticker, start, end)
    return RawPrices(from_yfinance(raw, ticker), warnings)


def _without_crumb(record: logging.LogRecord) -> bool:
    """yfinance's warning that it goes on without Yahoo's cookie and crumb is left out: the
    download it goes on with either works, or fails with a line of its own saying why (offline,
    every download would print both)."""
    return "continuing without crumb" not in record.getMessage()


def no_prices(ticker: str, start: date, end: date, why: str = "") -> PsystockError:
    because = f" ({why})" if why else ""
    return PsystockError(
        f"Yahoo has no prices for {ticker!r} between {start} and {end}{because}: choose dates inside "
        "the ticker's history"
    )


def yahoo_failure(exc: BaseException, ticker: str, start: date, end: date) -> PsystockError | None:
    """What a failed Yahoo download means and what to do about it; None for an unforeseen error.

    Tells apart an unreachable network (name resolution, refused connection,
    timeout), a symbol Yahoo does not know, a range without prices, and rate
    limiting.
    """
    from yfinance import exceptions as yfe

    offline = "or run offline on a CSV in Yahoo's layout: -P source=prices.csv (make run DATA=prices.csv)"
    if isinstance(exc, yfe.YFRateLimitError):
        return PsystockError(f"Yahoo is rate-limiting this machine: wait a few minutes and run again, {offline}")
    if isinstance(exc, yfe.YFTzMissingError):
        return PsystockError(
            f"Yahoo does not know the ticker {ticker!r} (no such symbol, or delisted): check its spelling "
            "on finance.yahoo.com, e.g. BRK-B, ^GSPC, EURUSD=X"
        )
    if isinstance(exc, yfe.YFPricesMissingError):
        return no_prices(ticker, start, end, getattr(exc, "yahoo_reason", None) or "")
    if isinstance(exc, yfe.YFException):
        return PsystockError(f"Yahoo refused the download of {ticker!r}: {_first_line(exc)}")
    if isinstance(exc, OSError):  # curl_cffi's and requests' network errors are OSErrors
        kind = "did not answer in time" if "timeout" in type(exc).__name__.lower() else "cannot be reached"
        return PsystockError(
            f"Yahoo Finance {kind} ({_network_reason(exc)}): check the network connection (or HTTPS_PROXY), {offline}"
        )
    return None


def _network_reason(exc: BaseException) -> str:
    """``Could not resolve host: query2.finance.yahoo.com`` out of curl's long message."""
    text = _first_line(exc)
    found = re.search(r"curl: \(\d+\) (.+?)(?: \(|\. See |$)", text)
    return found.group(1) if found else text[:200] or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def partial_bar(days: pd.DatetimeIndex, now: datetime) -> bool:
    """Whether the last bar belongs to a session that has not closed at ``now``.

    Yahoo dates a bar by its session's day in the exchange's time zone (the
    index's). A series that trades every day (crypto) has 24-hour sessions:
    today's bar is partial until midnight. A weekday exchange closes by
    :data:`SESSION_CLOSE`, local time.
    """
    if not len(days):
        return False
    last = days[-1]
    local_now = pd.Timestamp(now)
    local_now = local_now.tz_convert(last.tz) if last.tz is not None else local_now.tz_localize(None)
    if last.date() < local_now.date():
        return False
    if last.date() > local_now.date():
        return True
    return not weekdays_only(days) or local_now.time() < SESSION_CLOSE


def from_yfinance(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Yahoo's layout from what yfinance returns.

    ``Ticker.history`` gives flat columns and a ``Date`` index in the
    exchange's time zone; ``yf.download`` gives ``(Price, Ticker)``
    MultiIndex columns. Without ``Adj Close`` (auto-adjusted) ``Close`` stands in.
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


# --- CSV files ---------------------------------------------------------------------------


def read_csv(location: str, ticker: str = "") -> RawPrices:
    """Read a CSV of daily bars (a path or an http(s)/file URL) as text columns.

    Reads Yahoo's layout (one header row) and the one ``yf.download(...).to_csv()``
    writes (``Price`` / ``Ticker`` / ``Date`` header rows), whose ticker row
    must name ``ticker`` (or, with no ticker given, one ticker alone).
    """
    try:
        table = pd.read_csv(location, dtype=str, keep_default_na=False, header=None, skip_blank_lines=True)
    except FileNotFoundError:
        raise PsystockError(f"price CSV not found: {location}") from None
    except UnicodeDecodeError:
        raise PsystockError(f"price CSV {location} is not UTF-8 text: save it as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty file"
        raise PsystockError(f"cannot parse price CSV {location}: {first}") from None
    except OSError as exc:  # a folder, no permission, a URL that does not answer
        cause = getattr(exc, "reason", exc)  # urllib's error wraps the connection's or the file's
        raise PsystockError(f"cannot read price CSV {location}: {getattr(cause, 'strerror', None) or cause}") from None
    table = table.apply(lambda column: column.str.strip())
    if len(table) >= 2 and table.iloc[0, 0] == "Price" and table.iloc[1, 0] == "Ticker":
        raw = _yfinance_table(table, ticker, location)
    else:
        raw = RawPrices(_with_header(table.iloc[1:], list(table.iloc[0]), location))
    return _fill_adj_close(raw)


def _with_header(body: pd.DataFrame, header: list[str], location: str) -> pd.DataFrame:
    header = [name if isinstance(name, str) else "" for name in header]
    repeated = sorted({name for name in header if header.count(name) > 1 and name})
    if repeated:
        raise PsystockError(f"price CSV {location} repeats columns {', '.join(repeated)}: keep one of each")
    frame = body.copy()
    frame.columns = header
    return frame.reset_index(drop=True)


def _yfinance_table(table: pd.DataFrame, ticker: str, location: str) -> RawPrices:
    """The ``Price,...`` / ``Ticker,...`` / ``Date,,,`` layout: this ticker's columns, in Yahoo's order."""
    names, tickers = list(table.iloc[0]), list(table.iloc[1])
    body = table.iloc[2:]
    if len(body) and body.iloc[0, 0] == "Date" and not "".join(body.iloc[0, 1:]):
        body = body.iloc[1:]
    held = sorted({t for t in tickers[1:] if t})
    if not ticker and len(held) == 1:
        ticker = held[0]
    if ticker.upper() not in {t.upper() for t in held}:
        raise PsystockError(
            f"price CSV {location} holds prices of {', '.join(held) or 'no ticker'}, not {ticker!r}: "
            "check the ticker parameter or the file"
        )
    keep = [0] + [i for i, t in enumerate(tickers) if i and t.upper() == ticker.upper()]
    header = ["Date", *(names[i] for i in keep[1:])]
    return RawPrices(_with_header(body.iloc[:, keep], header, location))


def _fill_adj_close(raw: RawPrices) -> RawPrices:
    frame = raw.frame
    if "Adj Close" in frame.columns or "Close" not in frame.columns:
        return raw
    frame = frame.assign(**{"Adj Close": frame["Close"]})
    note = "no Adj Close column (an auto-adjusted export): Close stands in for it"
    return RawPrices(frame, [*raw.warnings, note])


# --- validation --------------------------------------------------------------------------


def validate_prices(raw: pd.DataFrame | RawPrices, min_rows: int = 1) -> Prices:
    """Check and normalise bars in Yahoo's layout.

    Drops rows without a single value (Yahoo's ``null`` rows), reverses a file
    listed newest first, and rejects missing columns, unparseable, duplicated
    or shuffled dates, non-numeric, missing or non-positive prices and fewer
    than ``min_rows`` rows. Bars whose High/Low disagree with Open/Close are
    kept and counted in the returned warnings.
    """
    given = raw if isinstance(raw, RawPrices) else RawPrices(raw)
    source, notes = given.frame, list(given.warnings)
    missing = [c for c in COLUMNS if c not in source.columns]
    if missing:
        raise PsystockError(f"price data lacks columns {', '.join(missing)}; expected {','.join(COLUMNS)}")
    days = _parse_dates(source["Date"])
    empty = np.all([_missing(source[c]).to_numpy() for c in VALUE_COLUMNS], axis=0)
    dropped = tuple(d.date().isoformat() for d in days[empty])
    source, days = source[~empty].reset_index(drop=True), days[~empty].reset_index(drop=True)
    is_reversed = _check_date_order(days)
    if is_reversed:
        notes.append(f"dates run newest first (from {days.iloc[0].date()}): read oldest first")
        source, days = source.iloc[::-1].reset_index(drop=True), days.iloc[::-1].reset_index(drop=True)
    frame = pd.DataFrame({"Date": days})
    for column in VALUE_COLUMNS:
        frame[column] = _parse_numbers(source[column], column, frame["Date"])
    positive = list(PRICE_COLUMNS)
    bad = frame[(frame[positive] <= 0).any(axis=1)]
    if len(bad):
        raise PsystockError(f"prices must be > 0; {len(bad)} rows are not, first on {_days(bad['Date'])}")
    if (frame["Volume"] < 0).any():
        raise PsystockError(f"Volume must be >= 0; negative on {_days(frame.loc[frame['Volume'] < 0, 'Date'])}")
    if len(frame) < min_rows:
        raise PsystockError(f"only {len(frame)} rows of prices; at least {min_rows} are needed")
    return Prices(frame, tuple(notes), dropped, is_reversed)


def select_range(prices: Prices, start: date, end: date, min_rows: int = 1) -> Prices:
    """The bars from ``start`` to ``end``, both inclusive (and the null rows dropped within it)."""
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
    dropped = tuple(d for d in prices.dropped_days if start.isoformat() <= d <= end.isoformat())
    return replace(prices, frame=inside.reset_index(drop=True), dropped_days=dropped)


def weekdays_only(days: pd.Series | pd.DatetimeIndex) -> bool:
    """Whether a series trades on weekdays only (an exchange's calendar) rather than every day."""
    weekday = pd.DatetimeIndex(days).day_of_week
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
    raw = download_yahoo(ticker, start, end) if source == YAHOO else read_csv(source, ticker)
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
    return days.reset_index(drop=True)


def _check_date_order(days: pd.Series) -> bool:
    """Refuse duplicated and shuffled dates; True for dates in strictly descending order."""
    duplicated = days[days.duplicated()]
    if len(duplicated):
        raise PsystockError(f"{len(duplicated)} duplicated dates, first {_days(duplicated)}: keep one row per day")
    steps = days.diff().iloc[1:]
    if len(steps) and (steps < pd.Timedelta(0)).all():
        return True
    backwards = np.flatnonzero(days.diff() < pd.Timedelta(0))
    if len(backwards):
        i = backwards[0]
        raise PsystockError(
            f"dates are not in ascending order: {days.iloc[i].date()} follows {days.iloc[i - 1].date()} "
            f"(row {i + 2}); sort the file by Date"
        )
    return False


def _missing(column: pd.Series) -> pd.Series:
    return column.isna() | column.astype(str).str.strip().isin(MISSING)


def _parse_numbers(column: pd.Series, name: str, days: pd.Series) -> pd.Series:
    column = column.reset_index(drop=True)
    text = column.astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
    missing = _missing(column)
    if missing.any():
        raise PsystockError(f"{name} is missing on {int(missing.sum())} days, first {_days(days[missing])}")
    bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
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


def _listed(days: tuple[str, ...], shown: int = 10) -> str:
    more = f" and {len(days) - shown} more" if len(days) > shown else ""
    return ", ".join(days[:shown]) + more
