from datetime import date

import pandas as pd
import pytest

from psystock import PsystockError
from psystock.data import COLUMNS, parse_day, read_csv, select_range, validate_prices
from tests.helpers.services import free_port


def raw_csv(n=5, start="2020-01-01"):
    """Bars as read from a CSV: every column text, as ``read_csv`` gives them."""
    days = pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"Date": days})
    for i, column in enumerate(["Open", "High", "Low", "Close", "Adj Close"]):
        frame[column] = [f"{100 + d + (i == 1) * 2 - (i == 2) * 2:.4f}" for d in range(n)]
    frame["Volume"] = [str(1000 + d) for d in range(n)]
    return frame


def test_validate_normalises_types():
    prices = validate_prices(raw_csv())
    assert list(prices.frame.columns) == list(COLUMNS)
    assert prices.frame["Date"].dtype.kind == "M"
    assert prices.frame["Close"].dtype == float
    assert prices.first_date == "2020-01-01" and prices.last_date == "2020-01-05"
    assert prices.warnings == []


def test_validate_accepts_dates_with_time_and_offset():
    raw = raw_csv(2)
    raw["Date"] = ["2020-01-02 00:00:00-05:00", "2020-01-03 00:00:00-05:00"]
    assert validate_prices(raw).first_date == "2020-01-02"


def test_a_source_that_cannot_be_read_is_one_line_saying_why(tmp_path):
    missing = tmp_path / "missing.csv"
    url = f"http://127.0.0.1:{free_port()}/prices.csv"  # nothing listens there
    cases = {
        str(tmp_path): f"cannot read price CSV {tmp_path}: Is a directory",
        str(missing): f"price CSV not found: {missing}",
        missing.as_uri(): f"cannot read price CSV {missing.as_uri()}: No such file or directory",
        url: f"cannot read price CSV {url}: Connection refused",
    }
    for location, message in cases.items():
        with pytest.raises(PsystockError) as raised:
            read_csv(location)
        assert str(raised.value) == message


def test_fetch_rejects_missing_columns():
    with pytest.raises(PsystockError, match="lacks columns Volume"):
        validate_prices(raw_csv().drop(columns=["Volume"]))


def test_fetch_rejects_unsorted_dates():
    raw = raw_csv()
    raw.loc[[1, 2], "Date"] = raw.loc[[2, 1], "Date"].to_numpy()
    with pytest.raises(PsystockError, match="not in ascending order: 2020-01-02 follows 2020-01-03"):
        validate_prices(raw)


def test_fetch_rejects_duplicated_dates():
    raw = raw_csv()
    raw.loc[3, "Date"] = raw.loc[2, "Date"]
    with pytest.raises(PsystockError, match="1 duplicated dates, first 2020-01-03"):
        validate_prices(raw)


def test_fetch_rejects_unparseable_dates():
    raw = raw_csv()
    raw.loc[1, "Date"] = "yesterday"
    with pytest.raises(PsystockError, match=r"unparseable dates .*'yesterday'"):
        validate_prices(raw)


@pytest.mark.parametrize("missing", ["", "nan", "null"])
def test_fetch_rejects_missing_prices(missing):
    raw = raw_csv()
    raw.loc[2, "Close"] = missing
    with pytest.raises(PsystockError, match="Close is missing on 1 days, first 2020-01-03"):
        validate_prices(raw)


def test_fetch_rejects_text_in_price_column():
    raw = raw_csv()
    raw.loc[4, "Open"] = "n/a?"
    with pytest.raises(PsystockError, match=r"Open has 1 non-numeric values \(2020-01-05: 'n/a\?'\)"):
        validate_prices(raw)


def test_fetch_rejects_non_positive_prices():
    raw = raw_csv()
    raw.loc[0, "Low"] = "0"
    with pytest.raises(PsystockError, match="prices must be > 0"):
        validate_prices(raw)


def test_fetch_rejects_too_few_rows():
    with pytest.raises(PsystockError, match="only 5 rows of prices; at least 15"):
        validate_prices(raw_csv(5), min_rows=15)


def test_inconsistent_high_low_is_warned_not_rejected():
    raw = raw_csv()
    raw.loc[1, "High"] = "50"
    prices = validate_prices(raw)
    assert len(prices.frame) == 5
    assert prices.warnings == ["1 bars have High/Low outside Open/Close, first 2020-01-02"]


def test_select_range_is_inclusive():
    prices = validate_prices(raw_csv(10))
    inside = select_range(prices, date(2020, 1, 3), date(2020, 1, 6))
    assert inside.first_date == "2020-01-03" and inside.last_date == "2020-01-06"
    assert len(inside.frame) == 4


def test_select_range_too_short_names_the_data_span():
    prices = validate_prices(raw_csv(10))
    with pytest.raises(PsystockError, match=r"2 rows between 2020-01-09 and 2020-02-01 .*2020-01-01 to 2020-01-10"):
        select_range(prices, date(2020, 1, 9), date(2020, 2, 1), min_rows=15)


def test_select_range_rejects_start_after_end():
    with pytest.raises(PsystockError, match="start 2020-02-01 is after end 2020-01-01"):
        select_range(validate_prices(raw_csv()), date(2020, 2, 1), date(2020, 1, 1))


def test_parse_day_error_names_the_parameter():
    with pytest.raises(PsystockError, match="end must be a date like 2020-12-31, got '31/12/2020'"):
        parse_day("31/12/2020", "end")


def test_a_gap_of_years_inside_the_range_is_refused_but_not_outside_it():
    raw = pd.concat([raw_csv(10, "2015-01-01"), raw_csv(10, "2018-06-01")], ignore_index=True)
    prices = validate_prices(raw)
    with pytest.raises(
        PsystockError,
        match=r"1 gaps of more than 31 days in the prices, the first from "
        r"2015-01-10 to 2018-06-01 \(1238 days\)",
    ):
        select_range(prices, date(2015, 1, 1), date(2018, 12, 31))
    assert len(select_range(prices, date(2018, 1, 1), date(2018, 12, 31)).frame) == 10


def test_weekends_and_holidays_are_not_gaps():
    raw = raw_csv(10)
    raw["Date"] = pd.bdate_range("2020-12-21", periods=10).strftime("%Y-%m-%d")  # Mon-Fri, over Christmas
    assert len(select_range(validate_prices(raw), date(2020, 12, 1), date(2021, 1, 31)).frame) == 10


def test_a_fetch_run_records_the_bars_range_and_what_reading_them_changed():
    from psystock import names

    raw = raw_csv(6).iloc[::-1].reset_index(drop=True)  # newest first, as some exports are
    raw.loc[2, ["Open", "High", "Low", "Close", "Adj Close", "Volume"]] = "null"  # Yahoo's row for a day it lacks
    prices = validate_prices(raw)
    tags = prices.tags("BTC-USD")
    assert {k: tags[k] for k in (names.TAG_TICKER, names.TAG_FIRST_DATE, names.TAG_LAST_DATE)} == {
        names.TAG_TICKER: "BTC-USD",
        names.TAG_FIRST_DATE: "2020-01-01",
        names.TAG_LAST_DATE: "2020-01-06",
    }
    assert (tags[names.TAG_DROPPED_ROWS], tags[names.TAG_DROPPED_DAYS], tags[names.TAG_REVERSED]) == (
        "1",
        "2020-01-04",
        "true",
    )
    assert tags[names.TAG_RANGE_WARNINGS] == str(len(prices.warnings))
    assert tags[names.TAG_DATA_WARNINGS] == "\n".join(prices.warnings)
    assert validate_prices(raw_csv()).tags("SPY")[names.TAG_REVERSED] == "false"
