"""Real exports read as they are: Yahoo's null rows, yfinance's three header rows, newest-first
files, a missing Adj Close. Each built from a committed real file the way the tool that writes
it would, and each liberty named in a warning."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from psystock import PsystockError
from psystock.data import COLUMNS, load_prices, read_csv, select_range, validate_prices
from tests.helpers.runs import FIXTURES

SPY = FIXTURES / "SPY.csv"
START, END = date(2005, 1, 1), date(2012, 8, 31)


def spy_lines() -> list[str]:
    return SPY.read_text().splitlines()


def write(lines: list[str], path) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def clean() -> pd.DataFrame:
    return load_prices(str(SPY), "SPY", START, END, 1).frame


def with_null_rows(days: list[str]) -> list[str]:
    """The fixture with Yahoo's null rows on ``days``: the date kept, every value ``null``."""
    nulls = ",null" * 6
    return [f"{line[:10]}{nulls}" if line[:10] in days else line for line in spy_lines()]


def yf_download(frame: pd.DataFrame, tickers: list[str], auto_adjust: bool) -> pd.DataFrame:
    """What ``yf.download(tickers, group_by='column')`` returns in yfinance 0.2.51 and later:
    (Price, Ticker) columns sorted alphabetically, a ``Date`` index; no ``Adj Close`` when
    auto-adjusted (Close is then the adjusted close)."""
    bars = frame.set_index("Date").rename_axis("Date")
    if auto_adjust:
        bars = bars.drop(columns=["Adj Close"])
    parts = {ticker: bars * (1 + i) for i, ticker in enumerate(tickers)}
    joined = pd.concat(parts, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1)
    return joined.sort_index(axis=1, level=0)


def test_null_rows_are_dropped_counted_and_dated(tmp_path):
    days = ["2008-10-06", "2010-05-06", "2010-05-07"]
    prices = load_prices(write(with_null_rows(days), tmp_path / "SPY.csv"), "SPY", START, END, 1)
    assert prices.dropped_days == tuple(days)
    assert len(prices.frame) == len(clean()) - 3
    assert not prices.frame["Date"].isin(pd.to_datetime(days)).any()
    assert prices.warnings == [
        "dropped 3 rows without prices (Yahoo's null rows for days it lacks): 2008-10-06, 2010-05-06, 2010-05-07"
    ]


def test_only_the_null_rows_inside_the_range_are_reported(tmp_path):
    prices = load_prices(
        write(with_null_rows(["2006-03-01", "2011-03-01"]), tmp_path / "SPY.csv"),
        "SPY",
        date(2011, 1, 1),
        END,
        1,
    )
    assert prices.dropped_days == ("2011-03-01",)


def test_the_gap_rule_holds_on_what_remains_after_null_rows(tmp_path):
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2009-03-02", "2009-04-30")]
    with pytest.raises(PsystockError, match=r"1 gaps of more than 31 days .* from 2009-02-27 to 2009-05-01"):
        load_prices(write(with_null_rows(days), tmp_path / "SPY.csv"), "SPY", START, END, 1)


def test_a_row_with_some_values_missing_is_still_refused(tmp_path):
    lines = spy_lines()
    lines = [line.replace(line.split(",")[4], "null") if line.startswith("2010-05-06") else line for line in lines]
    with pytest.raises(PsystockError, match="Close is missing on 1 days, first 2010-05-06"):
        load_prices(write(lines, tmp_path / "SPY.csv"), "SPY", START, END, 1)


@pytest.mark.parametrize("auto_adjust", [False, True], ids=["auto_adjust=False", "auto_adjust=True"])
def test_the_yfinance_layout_reads_as_the_plain_one(tmp_path, auto_adjust):
    path = tmp_path / "SPY.csv"
    yf_download(clean(), ["SPY"], auto_adjust).to_csv(path)
    assert path.read_text().splitlines()[:3] == [
        "Price," + ",".join(sorted(c for c in COLUMNS[1:] if c != "Adj Close" or not auto_adjust)),
        "Ticker," + ",".join(["SPY"] * (5 if auto_adjust else 6)),
        "Date," + "," * (4 if auto_adjust else 5),
    ]
    prices = load_prices(str(path), "SPY", START, END, 1)
    expected = clean()
    if auto_adjust:
        expected["Adj Close"] = expected["Close"]
        assert prices.warnings == ["no Adj Close column (an auto-adjusted export): Close stands in for it"]
    else:
        assert prices.warnings == []
    pd.testing.assert_frame_equal(prices.frame, expected)


def test_the_yfinance_layout_of_several_tickers_gives_the_one_asked_for(tmp_path):
    path = tmp_path / "watch.csv"
    yf_download(clean(), ["SPY", "GLD"], auto_adjust=False).to_csv(path)
    spy = load_prices(str(path), "SPY", START, END, 1).frame
    gld = load_prices(str(path), "GLD", START, END, 1).frame
    pd.testing.assert_frame_equal(spy, clean())
    assert (gld["Close"] == 2 * clean()["Close"]).all()


def test_the_yfinance_layout_must_hold_the_ticker_asked_for(tmp_path):
    path = tmp_path / "SPY.csv"
    yf_download(clean(), ["SPY"], auto_adjust=True).to_csv(path)
    with pytest.raises(PsystockError, match=r"holds prices of SPY, not 'IBM': check the ticker parameter"):
        load_prices(str(path), "IBM", START, END, 1)


def test_a_file_newest_first_is_reversed_with_a_warning(tmp_path):
    header, *rows = spy_lines()
    prices = load_prices(write([header, *reversed(rows)], tmp_path / "SPY.csv"), "SPY", START, END, 1)
    pd.testing.assert_frame_equal(prices.frame, clean())
    assert prices.reversed
    assert prices.warnings == ["dates run newest first (from 2012-08-31): read oldest first"]


def test_a_shuffled_file_is_still_refused(tmp_path):
    header, *rows = spy_lines()
    shuffled = [rows[1], rows[0], *rows[2:][::-1]]
    with pytest.raises(PsystockError, match="dates are not in ascending order"):
        load_prices(write([header, *shuffled], tmp_path / "SPY.csv"), "SPY", START, END, 1)


def test_a_plain_file_without_adj_close_uses_close_and_says_so(tmp_path):
    path = tmp_path / "SPY.csv"
    clean().drop(columns=["Adj Close"]).to_csv(path, index=False, date_format="%Y-%m-%d")
    prices = validate_prices(read_csv(str(path), "SPY"))
    assert (prices.frame["Adj Close"] == prices.frame["Close"]).all()
    assert prices.notes == ("no Adj Close column (an auto-adjusted export): Close stands in for it",)


def test_repeated_columns_are_refused(tmp_path):
    header, *rows = spy_lines()
    lines = [header + ",Close", *(row + ",1" for row in rows)]
    with pytest.raises(PsystockError, match="repeats columns Close"):
        read_csv(write(lines, tmp_path / "SPY.csv"), "SPY")


def test_select_range_keeps_what_reading_noticed(tmp_path):
    header, *rows = spy_lines()
    prices = validate_prices(read_csv(write([header, *reversed(rows)], tmp_path / "SPY.csv"), "SPY"))
    inside = select_range(prices, date(2010, 1, 1), date(2010, 12, 31))
    assert inside.reversed and inside.warnings == prices.warnings
