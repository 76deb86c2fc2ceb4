"""The price store: what Yahoo gave is kept and served again offline; the committed bars seed it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from curl_cffi.const import CurlECode
from curl_cffi.requests import exceptions as curl

from psystock import PsystockError, names
from psystock.data import read_csv, validate_prices
from psystock.price_store import DATA_DIR_ENV, PriceStore, data_dir, fetch, main
from tests.helpers.runs import BTC_CSV, FIXTURES
from tests.helpers.yahoo import history_frame

OFFLINE = curl.DNSError(
    "Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com", CurlECode.COULDNT_RESOLVE_HOST
)
REFERENCE = (date(2014, 1, 1), date(2020, 12, 31))  # fetch_data's default range


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "data")


def bars(store, entry):
    return validate_prices(store.read(entry)).frame


def test_a_new_store_serves_the_committed_bars_for_the_default_ticker_and_range(store, history):
    calls = history(OFFLINE)
    served = fetch(names.STORE, "BTC-USD", *REFERENCE, store=store)
    assert (served.by, calls) == (names.STORE, []) and served.entry is not None
    assert served.location == str(store.bars_path(served.entry.digest))
    pd.testing.assert_frame_equal(validate_prices(served.raw).frame, validate_prices(read_csv(str(BTC_CSV))).frame)
    assert served.tags() == {names.TAG_SERVED_BY: "store", names.TAG_STORED_BARS: served.entry.digest}
    assert fetch(names.STORE, "BTC-USD", date(2016, 3, 1), date(2016, 3, 31), store=store).by == names.STORE


def test_offline_a_range_the_store_does_not_cover_says_what_it_holds(store, history):
    history(OFFLINE)
    with pytest.raises(PsystockError) as raised:
        fetch(names.STORE, "BTC-USD", date(2020, 6, 1), date(2021, 3, 1), store=store)
    message = str(raised.value)
    assert message.startswith("Yahoo Finance cannot be reached")
    assert message.endswith(
        f"the price store at {store.root} holds only BTC-USD 2014-01-01..2020-12-31 "
        "(committed tests/fixtures/BTC-USD.csv)"
    )
    with pytest.raises(PsystockError, match="Yahoo Finance cannot be reached"):
        fetch(names.STORE, "SPY", date(2005, 1, 3), date(2012, 8, 31), store=store)


def test_a_download_is_kept_and_served_again_without_yahoo(store, history):
    calls = history(history_frame(FIXTURES / "SPY.csv"))
    downloaded = fetch(names.STORE, "SPY", date(2005, 1, 1), date(2012, 8, 31), store=store)
    assert downloaded.by == names.YAHOO and len(calls) == 1
    history(OFFLINE)
    again = fetch(names.STORE, "SPY", date(2006, 1, 1), date(2010, 12, 31), store=store)
    assert again.by == names.STORE and again.entry == downloaded.entry
    pd.testing.assert_frame_equal(validate_prices(again.raw).frame, validate_prices(downloaded.raw).frame)


def test_asking_for_yahoo_downloads_again_and_the_newest_download_serves(store, history):
    calls = history(history_frame(FIXTURES / "SPY.csv"))
    first = fetch(names.YAHOO, "SPY", date(2005, 1, 1), date(2012, 8, 31), store=store)
    history(history_frame(FIXTURES / "SPY.csv", rows=-5))  # Yahoo now lacks the last days
    second = fetch(names.YAHOO, "SPY", date(2005, 1, 1), date(2012, 8, 31), store=store)
    assert first.entry is not None and second.entry is not None
    assert len(calls) == 2 and second.entry.digest != first.entry.digest
    served = fetch(names.STORE, "SPY", date(2005, 1, 1), date(2012, 8, 31), store=store)
    assert served.entry == second.entry


def test_an_entry_covers_its_range_up_to_the_day_before_its_download(store):
    frame = validate_prices(read_csv(str(FIXTURES / "SPY.csv"))).frame
    entry = store.put(
        "SPY", date(2012, 1, 1), date(2012, 12, 31), frame, "yahoo", datetime(2012, 8, 31, 22, tzinfo=UTC)
    )
    assert entry.complete_until == date(2012, 8, 30)  # the 31st's bar was not final yet
    assert entry.covers("SPY", date(2012, 1, 1), date(2012, 8, 30))
    assert not entry.covers("SPY", date(2012, 1, 1), date(2012, 8, 31))
    assert not entry.covers("SPY", date(2011, 12, 31), date(2012, 6, 1))
    assert not entry.covers("GLD", date(2012, 1, 1), date(2012, 6, 1))
    assert store.find("SPY", date(2012, 2, 1), date(2012, 6, 1)) == entry


def test_damaged_bars_are_passed_over_never_served(store, caplog):
    frame = validate_prices(read_csv(str(FIXTURES / "SPY.csv"))).frame
    entry = store.put("SPY", date(2005, 1, 1), date(2012, 8, 31), frame, "yahoo", datetime(2026, 1, 1, tzinfo=UTC))
    path = store.bars_path(entry.digest)
    path.write_text(path.read_text().replace("2010-01-04", "2010-01-05", 1))
    assert store.find("SPY", date(2005, 1, 1), date(2012, 8, 31)) is None
    assert "missing or damaged; passed over" in caplog.text


def test_damaged_committed_bars_are_written_again_from_the_project(store):
    entry = store.find("BTC-USD", *REFERENCE)
    path = store.bars_path(entry.digest)
    path.write_text(path.read_text().replace("2016-01-01", "2016-01-02", 1))
    assert store.find("BTC-USD", *REFERENCE) == entry
    assert bars(store, entry).equals(validate_prices(read_csv(str(BTC_CSV))).frame)


def test_an_unreadable_entry_is_passed_over(store, caplog):
    store.seed("BTC-USD")
    (store.root / "entries" / "BTC-USD" / "broken.json").write_text("{not json")
    assert store.find("BTC-USD", *REFERENCE) is not None
    assert "is not an entry; passed over" in caplog.text


def test_the_same_bars_are_kept_once_and_no_temporary_file_stays(store):
    frame = validate_prices(read_csv(str(FIXTURES / "GLD.csv"))).frame
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = store.put("GLD", date(2005, 1, 1), date(2012, 8, 31), frame, "yahoo", now)
    second = store.put("GLD", date(2005, 1, 1), date(2012, 8, 31), frame, "yahoo", now)
    assert first == second
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert files == [f"bars/{first.digest}.csv", f"entries/GLD/{first.digest}-2005-01-01-2012-08-31.json"]
    assert json.loads((store.root / files[1]).read_text())["origin"] == "yahoo"


def test_a_csv_source_bypasses_the_store(store, history):
    calls = history(OFFLINE)
    served = fetch(str(FIXTURES / "IBM.csv"), "IBM", date(2005, 1, 1), date(2012, 8, 31), store=store)
    assert (served.by, served.entry, calls) == ("csv", None, [])
    assert not store.root.exists()


def test_the_data_directory_is_the_environments_or_the_users(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"
    monkeypatch.delenv(DATA_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "psystock"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".local" / "share" / "psystock"


def test_the_listing_shows_each_download_and_the_committed_bars_and_never_damaged_ones(
    store, history, monkeypatch, capsys
):
    monkeypatch.setenv(DATA_DIR_ENV, str(store.root))
    history(history_frame(FIXTURES / "SPY.csv"))
    spy = fetch(names.STORE, "SPY", date(2005, 1, 1), date(2012, 8, 31), store=store)
    assert spy.entry is not None
    main([])
    header, btc, spy_line = capsys.readouterr().out.splitlines()
    assert header == f"price store at {store.root} (PSYSTOCK_DATA_DIR moves it)"
    assert btc.startswith("BTC-USD 2014-01-01..2020-12-31 (committed tests/fixtures/BTC-USD.csv): 2298 bars, sha256 ")
    downloaded = spy.entry.fetched_at[:10]  # today, in UTC
    assert spy_line == (
        f"SPY 2005-01-01..2012-08-31 (yahoo, {downloaded}): {len(spy.raw.frame)} bars, sha256 {spy.entry.digest[:12]}"
    )
    main(["SPY", "GLD"])
    assert capsys.readouterr().out.splitlines()[1:] == [spy_line]
    path = store.bars_path(spy.entry.digest)
    path.write_text(path.read_text().replace("2010-01-04", "2010-01-05", 1))
    main(["SPY"])
    assert capsys.readouterr().out.splitlines()[1:] == ["no bars of SPY"]


def test_a_store_that_cannot_be_written_is_one_line_that_says_where_and_what_to_do(tmp_path, monkeypatch, history):
    history(OFFLINE)
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the store should be")
    expected = (
        f"the price store at {not_a_folder} cannot keep bars (Not a directory: {not_a_folder / 'bars'}); "
        "set PSYSTOCK_DATA_DIR to a directory you can write"
    )
    with pytest.raises(PsystockError) as raised:
        fetch(names.STORE, "BTC-USD", *REFERENCE, store=PriceStore(not_a_folder))
    assert str(raised.value) == expected
    monkeypatch.setenv(DATA_DIR_ENV, str(not_a_folder))
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == f"price store: error: {expected}"
    assert not_a_folder.read_text() == "a file where the store should be"
