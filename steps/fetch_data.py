"""fetch_data: daily bars of a ticker from Yahoo or a CSV in Yahoo's layout.

Reads: ``source`` (``yahoo`` or a CSV path/URL), filtered to ``start``..``end`` (inclusive).
Reads real exports as they are (see :mod:`psystock.data`): Yahoo's ``null``
rows dropped, a ``yf.download(...).to_csv()`` file's three header rows, a file
newest-first reversed, today's partial Yahoo bar left out -- each with a
warning, never silently.
Writes: ``prices/prices.csv`` (normalised bars), ``plots/open_price.png``, the
dataset as a run input (source and digest), metric ``rows``, tags
``first_date``/``last_date``, the dataset digest, ``psystock.data_warnings``
(one line per warning), ``psystock.dropped_null_rows`` /
``psystock.dropped_null_days`` and ``psystock.reversed_dates``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import mlflow
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.pandas_dataset import from_pandas

from psystock import data, names, plots
from psystock.entry_points import StepArgs
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_csv
from psystock.tickers import check_ticker

log = logging.getLogger("psystock.fetch_data")
TAG_LIMIT = 5000  # characters a tag value may hold on every tracking store


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "fetch_data"
    ticker: str = "BTC-USD"
    start: str = "2014-01-01"
    end: str = "2020-12-31"
    source: str = data.YAHOO
    min_rows: int = 15


def fetch(args: Args) -> None:
    check_ticker(args.ticker)
    start = data.parse_day(args.start, "start")
    end = data.parse_day(args.end, "end")
    prices = data.load_prices(args.source, args.ticker, start, end, args.min_rows)
    for warning in prices.warnings:
        log.warning(warning)
    frame = prices.frame
    log.info("%d rows of %s from %s to %s", len(frame), args.ticker, prices.first_date, prices.last_date)

    dataset = from_pandas(frame, source=_dataset_source(args), name=f"{args.ticker} daily")
    mlflow.log_input(dataset, context="prices")
    log_csv(frame, names.artifact(names.PRICES_DIR, names.PRICES_FILE), date_format="%Y-%m-%d")
    mlflow.log_metric("rows", len(frame))
    mlflow.set_tags(
        {
            names.TAG_TICKER: args.ticker,
            names.TAG_FIRST_DATE: prices.first_date,
            names.TAG_LAST_DATE: prices.last_date,
            names.TAG_RANGE_WARNINGS: str(len(prices.warnings)),
            names.TAG_DATA_WARNINGS: "\n".join(prices.warnings)[:TAG_LIMIT],
            names.TAG_DROPPED_ROWS: str(len(prices.dropped_days)),
            names.TAG_DROPPED_DAYS: ",".join(prices.dropped_days)[:TAG_LIMIT],
            names.TAG_REVERSED: str(prices.reversed).lower(),
            names.TAG_DATASET_DIGEST: dataset.digest,
        }
    )
    figure = plots.line_figure(frame["Date"], frame["Open"], f"{args.ticker} Open price", "Open")
    mlflow.log_figure(figure, names.plot("open_price"))


def _dataset_source(args: Args) -> DatasetSource:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    if args.source == data.YAHOO:
        return HTTPDatasetSource(
            f"https://finance.yahoo.com/quote/{args.ticker}/history?period1={args.start}&period2={args.end}"
        )
    with warnings.catch_warnings():
        # A local path matches two artifact-source types that are the same to us.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        return resolve_dataset_source(args.source)


if __name__ == "__main__":
    run_step(Args, fetch)
