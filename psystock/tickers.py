"""Ticker symbols: which psystock accepts, and watch lists of them.

A ticker becomes part of a registered model's name, a file name and the
filter strings of run searches, so only what exchanges and Yahoo use is
accepted: letters, digits and ``. - ^ =`` (``BRK-B``, ``^GSPC``,
``EURUSD=X``, ``0700.HK``, ``ES=F``), starting with a letter, a digit or
``^``, at most :data:`MAX_LENGTH` characters.
"""

from __future__ import annotations

import re
from pathlib import Path

from psystock import PsystockError

MAX_LENGTH = 20
_SYMBOL = re.compile(rf"[A-Za-z0-9^][A-Za-z0-9.\-^=]{{0,{MAX_LENGTH - 1}}}")
EXAMPLES = "BRK-B, ^GSPC, EURUSD=X, 0700.HK"


def check_ticker(ticker: str, where: str = "ticker") -> str:
    """``ticker`` if it is a symbol psystock accepts, else a clear error naming ``where`` it came from."""
    if not _SYMBOL.fullmatch(ticker):
        raise PsystockError(
            f"{where} {ticker!r} is not a ticker symbol: use letters, digits and . - ^ = "
            f"(at most {MAX_LENGTH}, starting with a letter, digit or ^), as Yahoo spells it ({EXAMPLES})"
        )
    return ticker


def parse_tickers(text: str) -> list[str]:
    """The tickers of a ``tickers`` parameter, in order, each once.

    Either a comma-separated list (``SPY,GLD,IBM``) or ``@path`` to a file
    with one ticker per line, where ``#`` starts a comment and blank lines
    are skipped. Every ticker is checked (:func:`check_ticker`) before any is
    used; a ticker given twice is refused, since two pipelines of one ticker
    would race for its registered model.
    """
    if text.strip().startswith("@"):
        entries = _file_entries(Path(text.strip()[1:]).expanduser())
    else:
        entries = [("tickers", item.strip()) for item in text.split(",") if item.strip()]
    if not entries:
        raise PsystockError("tickers is empty: give a comma-separated list (SPY,GLD) or @file with one per line")
    tickers = [check_ticker(ticker, where) for where, ticker in entries]
    twice = sorted({t for t in tickers if tickers.count(t) > 1})
    if twice:
        raise PsystockError(f"tickers names {', '.join(twice)} more than once: list each ticker once")
    return tickers


def _file_entries(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise PsystockError(f"tickers file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PsystockError(f"cannot read tickers file {path}: {exc}") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        ticker = line.split("#", 1)[0].strip()
        if ticker:
            entries.append((f"{path.name} line {number}:", ticker))
    return entries
