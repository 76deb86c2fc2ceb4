"""The Yahoo source, with yfinance's ``Ticker.history`` replaced: it answers with a frame shaped as
the real one (the exchange's time zone, Yahoo's columns) or raises what the real one raises."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
import yfinance
from curl_cffi.const import CurlECode
from curl_cffi.requests import exceptions as curl
from yfinance import exceptions as yfe

from psystock import PsystockError
from psystock.data import download_yahoo, partial_bar, select_range, validate_prices
from tests.helpers.runs import BTC_CSV, FIXTURES
from tests.helpers.yahoo import NEW_YORK, history_frame

CURL_DNS = (
    "Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com (Domain name not found). "
    "See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
)
CURL_TIMEOUT = (
    "Failed to perform, curl: (28) Connection timed out after 10002 milliseconds. "
    "See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
)
CURL_REFUSED = (
    "Failed to perform, curl: (7) Failed to connect to query2.finance.yahoo.com port 443 after 0 ms: "
    "Could not connect to server. See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
)
OFFLINE = "or run offline on a CSV in Yahoo's layout: -P source=prices.csv (make run DATA=prices.csv)"


def test_download_asks_for_an_inclusive_range_unadjusted(history):
    calls = history(history_frame())
    raw = download_yahoo("SPY", date(2005, 1, 1), date(2012, 8, 31), now=datetime(2026, 1, 5, tzinfo=UTC))
    ticker, kwargs = calls[0]
    assert ticker == "SPY"
    assert (kwargs["start"], kwargs["end"]) == ("2005-01-01", "2012-09-01")  # yfinance's end is exclusive
    assert kwargs["auto_adjust"] is False and kwargs["interval"] == "1d" and kwargs["actions"] is False
    prices = validate_prices(raw)
    expected = validate_prices(pd.read_csv(FIXTURES / "SPY.csv", dtype=str))
    pd.testing.assert_frame_equal(prices.frame, expected.frame)  # the local day, whatever the time zone
    assert raw.warnings == []


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            curl.DNSError(CURL_DNS, CurlECode.COULDNT_RESOLVE_HOST),
            "Yahoo Finance cannot be reached (Could not resolve host: query2.finance.yahoo.com): "
            f"check the network connection (or HTTPS_PROXY), {OFFLINE}",
        ),
        (
            curl.ConnectionError(CURL_REFUSED, CurlECode.COULDNT_CONNECT),
            "Yahoo Finance cannot be reached (Failed to connect to query2.finance.yahoo.com port 443 after 0 ms: "
            f"Could not connect to server): check the network connection (or HTTPS_PROXY), {OFFLINE}",
        ),
        (
            curl.Timeout(CURL_TIMEOUT, CurlECode.OPERATION_TIMEDOUT),
            "Yahoo Finance did not answer in time (Connection timed out after 10002 milliseconds): "
            f"check the network connection (or HTTPS_PROXY), {OFFLINE}",
        ),
        (
            yfe.YFTzMissingError("NOPE"),
            "Yahoo does not know the ticker 'NOPE' (no such symbol, or delisted): check its spelling on "
            "finance.yahoo.com, e.g. BRK-B, ^GSPC, EURUSD=X",
        ),
        (
            yfe.YFPricesMissingError("NOPE", " (1d 1990-01-01 -> 1990-02-01)"),
            "Yahoo has no prices for 'NOPE' between 1990-01-01 and 1990-01-31: choose dates inside the "
            "ticker's history",
        ),
        (
            yfe.YFPricesMissingError("NOPE", "", yahoo_reason="Data doesn't exist for startDate = 631152000"),
            "Yahoo has no prices for 'NOPE' between 1990-01-01 and 1990-01-31 (Data doesn't exist for "
            "startDate = 631152000): choose dates inside the ticker's history",
        ),
        (
            yfe.YFRateLimitError(),
            f"Yahoo is rate-limiting this machine: wait a few minutes and run again, {OFFLINE}",
        ),
        (pd.DataFrame(), "Yahoo has no prices for 'NOPE' between 1990-01-01 and 1990-01-31: choose dates"),
    ],
    ids=["dns", "refused", "timeout", "unknown-symbol", "empty-range", "yahoo-reason", "rate-limit", "empty-frame"],
)
def test_a_failed_download_says_why_and_what_to_do(history, error, message):
    history(error)
    with pytest.raises(PsystockError) as raised:
        download_yahoo("NOPE", date(1990, 1, 1), date(1990, 1, 31))
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_yfinance_is_told_to_raise_rather_than_log(history):
    history(curl.DNSError(CURL_DNS, CurlECode.COULDNT_RESOLVE_HOST))
    with pytest.raises(PsystockError):
        download_yahoo("SPY", date(2020, 1, 1), date(2020, 1, 31))
    assert yfinance.config.debug.hide_exceptions is False


def test_yfinances_warning_that_it_goes_on_without_a_crumb_is_left_out(history, caplog):
    """Offline, yfinance warns that it could not fetch Yahoo's cookie and crumb and goes on, before
    the download fails: psystock's line says why, once; yfinance's other lines, and that warning
    outside a download, are kept."""
    from yfinance import utils

    def offline(**_kwargs):
        utils.get_yf_logger().warning("Cookie/crumb fetch failed (DNSError), continuing without crumb")
        utils.get_yf_logger().warning("something else yfinance says")
        raise curl.DNSError(CURL_DNS, CurlECode.COULDNT_RESOLVE_HOST)

    history(offline)
    with caplog.at_level("WARNING", logger="yfinance"), pytest.raises(PsystockError):
        download_yahoo("SPY", date(2020, 1, 1), date(2020, 1, 31))
    assert [r.getMessage() for r in caplog.records if r.name == "yfinance"] == ["something else yfinance says"]
    utils.get_yf_logger().warning("Crumb fetch rate-limited (HTTP 429), continuing without crumb")
    assert caplog.records[-1].getMessage().startswith("Crumb fetch rate-limited")


def test_an_unforeseen_error_is_not_disguised(history):
    history(KeyError("chart"))
    with pytest.raises(KeyError):
        download_yahoo("SPY", date(2020, 1, 1), date(2020, 1, 31))


def new_york(text: str) -> datetime:
    moment: datetime = pd.Timestamp(text, tz=NEW_YORK).to_pydatetime()
    return moment


@pytest.mark.parametrize(
    ("now", "partial"),
    [
        ("2012-08-31 10:00", True),  # Friday, the session open
        ("2012-08-31 17:00", True),  # after New York's close, before every exchange's
        ("2012-08-31 18:00", False),
        ("2012-09-01 09:00", False),  # the next day: Friday's bar is complete
    ],
)
def test_todays_bar_of_a_weekday_exchange_is_partial_until_the_close(now, partial):
    days = history_frame().index
    assert partial_bar(days, new_york(now)) is partial


def test_todays_bar_of_a_series_that_trades_every_day_is_partial_until_midnight():
    days = history_frame(BTC_CSV, tz="UTC").index  # ends 2020-12-31, a Thursday
    assert partial_bar(days, datetime(2020, 12, 31, 23, 30, tzinfo=UTC))
    assert not partial_bar(days, datetime(2021, 1, 1, 0, 5, tzinfo=UTC))
    # Late on the 31st in New York is already the 1st in UTC: the bar is complete.
    assert not partial_bar(days, new_york("2020-12-31 20:00"))


def test_the_download_leaves_out_todays_partial_bar(history):
    history(history_frame())
    raw = download_yahoo("SPY", date(2012, 8, 1), date(2012, 8, 31), now=new_york("2012-08-31 11:00"))
    prices = select_range(validate_prices(raw), date(2012, 8, 1), date(2012, 8, 31))
    assert prices.last_date == "2012-08-30"
    assert prices.warnings == ["left out the bar of 2012-08-31: its session has not closed, so Yahoo's bar is partial"]
