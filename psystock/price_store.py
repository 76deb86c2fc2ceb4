"""The price store: bars downloaded once, kept on disk, served again without a network.

Each download is kept content-addressed under the data directory
(``PSYSTOCK_DATA_DIR``; by default ``$XDG_DATA_HOME/psystock``, else
``~/.local/share/psystock``)::

    bars/<sha256>.csv                       the bars as Yahoo gave them, in Yahoo's layout
    entries/<ticker>/<sha256>.json          the ticker, the range asked for, when, from where

An entry covers the range it was downloaded for, up to the day before its
download (today's bar is never final). The bars committed with the project
seed the store, so the default ticker and range are there on a machine that
has never reached Yahoo. Files are written to a temporary name and renamed, so
a crash or a second writer never leaves half a file; a file whose content no
longer matches its name is passed over, never served.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from psystock import PsystockError, names
from psystock.data import Prices, RawPrices, download_yahoo, read_csv, select_range, validate_prices
from psystock.names import REMOTE_SOURCES, STORE, YAHOO

log = logging.getLogger(__name__)

DATA_DIR_ENV = "PSYSTOCK_DATA_DIR"
CSV = "csv"


@dataclass(frozen=True)
class Seed:
    """Bars committed with the project, as if downloaded for ``start``..``end``."""

    ticker: str
    path: str  # from the project's root
    start: date
    end: date


# Yahoo's BTC-USD series, asked for the reference's range (it begins on 2014-09-17): tests/fixtures/README.md.
SEEDS = (Seed("BTC-USD", "tests/fixtures/BTC-USD.csv", date(2014, 1, 1), date(2020, 12, 31)),)


@dataclass(frozen=True)
class Entry:
    ticker: str
    start: str  # the range asked for, ISO days
    end: str
    digest: str  # sha256 of the bars' file
    fetched_at: str  # ISO time, UTC
    origin: str  # "yahoo", or the committed file that seeded it

    @property
    def complete_until(self) -> date:
        """The last day whose bar was final when this was downloaded."""
        fetched = datetime.fromisoformat(self.fetched_at).date()
        return min(date.fromisoformat(self.end), fetched - timedelta(days=1))

    def covers(self, ticker: str, start: date, end: date) -> bool:
        return ticker == self.ticker and date.fromisoformat(self.start) <= start and end <= self.complete_until

    def describe(self) -> str:
        when = f", {self.fetched_at[:10]}" if self.origin == YAHOO else ""
        return f"{self.ticker} {self.start}..{self.complete_until.isoformat()} ({self.origin}{when})"


def data_dir() -> Path:
    """Where the store lives: ``PSYSTOCK_DATA_DIR``, else the user's XDG data directory."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "psystock"


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PriceStore:
    def __init__(self, root: Path | None = None, project_root: Path | None = None):
        self.root = root or data_dir()
        self.project_root = project_root or Path(__file__).resolve().parent.parent

    def bars_path(self, digest: str) -> Path:
        return self.root / "bars" / f"{digest}.csv"

    def _intact(self, digest: str) -> bool:
        path = self.bars_path(digest)
        return path.is_file() and _sha256(path.read_bytes()) == digest

    def put(self, ticker: str, start: date, end: date, frame: pd.DataFrame, origin: str, now: datetime) -> Entry:
        """Keep ``frame`` (bars in Yahoo's layout) as downloaded for ``start``..``end`` at ``now``."""
        content = frame.to_csv(index=False, date_format="%Y-%m-%d").encode()
        return self._keep(ticker, start, end, content, origin, now)

    def _keep(self, ticker: str, start: date, end: date, content: bytes, origin: str, now: datetime) -> Entry:
        digest = _sha256(content)
        entry = Entry(
            ticker, start.isoformat(), end.isoformat(), digest, now.isoformat(timespec="microseconds"), origin
        )
        name = f"{digest}-{start.isoformat()}-{end.isoformat()}.json"
        try:
            if not self._intact(digest):
                _write_atomically(self.bars_path(digest), content)
            _write_atomically(self.root / "entries" / ticker / name, json.dumps(asdict(entry), indent=1).encode())
        except OSError as exc:
            raise PsystockError(
                f"the price store at {self.root} cannot keep bars ({exc.strerror}: {exc.filename}); "
                f"set {DATA_DIR_ENV} to a directory you can write"
            ) from None
        return entry

    def entries(self, ticker: str) -> Iterator[Entry]:
        """The ticker's entries, the seeds included, whose bars are there and intact."""
        self.seed(ticker)
        for path in sorted((self.root / "entries" / ticker).glob("*.json")):
            try:
                entry = Entry(**json.loads(path.read_text()))
            except (ValueError, TypeError, OSError):
                log.warning("price store: %s is not an entry; passed over", path)
                continue
            if self._intact(entry.digest):
                yield entry
            else:
                log.warning("price store: the bars of %s are missing or damaged; passed over", entry.describe())

    def tickers(self) -> list[str]:
        """Every ticker the store holds entries of, and those the committed bars seed."""
        held = {path.name for path in (self.root / "entries").glob("*") if path.is_dir()}
        return sorted(held | {seed.ticker for seed in SEEDS})

    def listing(self, tickers: list[str] | None = None) -> list[str]:
        """One line for each entry of ``tickers`` (default: all of them), oldest download first: its
        ticker, the days it serves, where and when its bars came from, how many and their digest."""
        lines = []
        for ticker in tickers or self.tickers():
            for entry in sorted(self.entries(ticker), key=lambda e: e.fetched_at):
                with self.bars_path(entry.digest).open() as bars:
                    rows = sum(1 for _ in bars) - 1  # below the header
                lines.append(f"{entry.describe()}: {rows} bars, sha256 {entry.digest[:12]}")
        return lines

    def find(self, ticker: str, start: date, end: date) -> Entry | None:
        """The newest entry that covers ``start``..``end`` of ``ticker``, if any."""
        covering = [e for e in self.entries(ticker) if e.covers(ticker, start, end)]
        return max(covering, key=lambda e: e.fetched_at, default=None)

    def read(self, entry: Entry) -> RawPrices:
        return read_csv(str(self.bars_path(entry.digest)), entry.ticker)

    def seed(self, ticker: str) -> None:
        """Put the committed bars of ``ticker`` in the store, once (their content names them)."""
        for seed in SEEDS:
            path = self.project_root / seed.path
            if seed.ticker != ticker or not path.is_file():
                continue
            content = path.read_bytes()
            digest = _sha256(content)
            name = f"{digest}-{seed.start.isoformat()}-{seed.end.isoformat()}.json"
            if not (self._intact(digest) and (self.root / "entries" / ticker / name).is_file()):
                final = datetime.combine(seed.end + timedelta(days=1), datetime.min.time(), UTC)
                self._keep(ticker, seed.start, seed.end, content, f"committed {seed.path}", final)


@dataclass(frozen=True)
class Served:
    raw: RawPrices
    by: str  # STORE, YAHOO or CSV
    location: str  # the dataset's source: the stored file, "yahoo", or the CSV
    entry: Entry | None = None  # the store's entry that served or keeps the bars

    def tags(self) -> dict[str, str]:
        """What a fetch run records of where its bars came from."""
        stored = {names.TAG_STORED_BARS: self.entry.digest} if self.entry else {}
        return {names.TAG_SERVED_BY: self.by, **stored}


def fetch(source: str, ticker: str, start: date, end: date, store: PriceStore | None = None) -> Served:
    """The bars of ``ticker`` for ``start``..``end``: from the store when ``source`` is ``store`` and
    the store covers the range; from Yahoo (kept in the store) when it does not or when
    ``source`` is ``yahoo``; from the CSV that ``source`` names otherwise."""
    if source not in REMOTE_SOURCES:
        return Served(read_csv(source, ticker), CSV, source)
    store = store or PriceStore()
    if source == STORE:
        entry = store.find(ticker, start, end)
        if entry is not None:
            log.info("%s %s..%s from the price store at %s (%s)", ticker, start, end, store.root, entry.origin)
            return Served(store.read(entry), STORE, str(store.bars_path(entry.digest)), entry)
    try:
        raw = download_yahoo(ticker, start, end)
    except PsystockError as exc:
        held = [e.describe() for e in store.entries(ticker)]
        if source == STORE and held:
            raise PsystockError(f"{exc}; the price store at {store.root} holds only {'; '.join(held)}") from None
        raise
    entry = store.put(ticker, start, end, raw.frame, YAHOO, datetime.now(UTC))
    log.info("kept %s %s..%s in the price store at %s", ticker, start, end, store.root)
    return Served(raw, YAHOO, YAHOO, entry)


def recent_prices(source: str, ticker: str, window: int, today: date, store: PriceStore | None = None) -> Prices:
    """The bars to predict from when none are given: a CSV source's whole file, or the days up to
    ``today`` (as :func:`fetch` serves them), enough calendar days back to fill a ``window`` even
    on an exchange's calendar."""
    if source not in REMOTE_SOURCES:
        return validate_prices(read_csv(source, ticker), min_rows=window)
    start = today - timedelta(days=3 * window + 14)
    return load_prices(source, ticker, start, today, window, store)[0]


def load_prices(
    source: str, ticker: str, start: date, end: date, min_rows: int, store: PriceStore | None = None
) -> tuple[Prices, Served]:
    """Validated bars of ``ticker`` from ``start`` to ``end`` as :func:`fetch` serves them, and how."""
    served = fetch(source, ticker, start, end, store)
    return select_range(validate_prices(served.raw), start, end, min_rows), served


def main(argv: list[str] | None = None) -> None:
    """``python -m psystock.price_store [TICKER ...]``: what the store holds, and where."""
    parser = argparse.ArgumentParser(
        prog="python -m psystock.price_store",
        description="List the bars the price store holds: each download's ticker, the days it serves "
        "(up to the day before it was downloaded), its bars, and where and when they came from.",
    )
    parser.add_argument("tickers", nargs="*", metavar="TICKER", help="only these tickers (default: all)")
    args = parser.parse_args(argv)
    store = PriceStore()
    try:
        lines = store.listing(args.tickers)
    except PsystockError as exc:
        raise SystemExit(f"price store: error: {exc}") from None
    print(f"price store at {store.root} ({DATA_DIR_ENV} moves it)")
    print("\n".join(lines) if lines else f"no bars of {', '.join(args.tickers) or 'any ticker'}")


if __name__ == "__main__":
    main()
