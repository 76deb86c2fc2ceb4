"""fetch_data: daily bars of a ticker from the price store, Yahoo or a CSV in Yahoo's layout.

Reads: ``source`` (``store``: the price store if it covers the range, else Yahoo;
``yahoo``: a fresh download; or a CSV path/URL), filtered to ``start``..``end``
(inclusive); what Yahoo gives is kept in the store (:mod:`psystock.price_store`).
Reads real exports as they are (see :mod:`psystock.data`): Yahoo's ``null``
rows dropped, a ``yf.download(...).to_csv()`` file's three header rows, a file
newest-first reversed, today's partial Yahoo bar left out -- each with a
warning, never silently.
Writes: ``prices/prices.csv`` (normalised bars), ``plots/open_price.png``, the
dataset as a run input (source and digest), metric ``rows``, tags
``first_date``/``last_date``, the dataset digest, ``psystock.data_warnings``
(one line per warning), ``psystock.dropped_null_rows`` /
``psystock.dropped_null_days``, ``psystock.reversed_dates`` and which source
served the bars (``psystock.prices_served_by``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow.data.pandas_dataset import from_pandas

from psystock import data, names, plots, price_store
from psystock.entry_points import StepArgs
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.lineage import log_dataset, prices_source
from psystock.mlflow_io.outputs import log_csv
from psystock.tickers import check_ticker

log = logging.getLogger("psystock.fetch_data")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "fetch_data"
    ticker: str = "BTC-USD"
    start: str = "2014-01-01"
    end: str = "2020-12-31"
    source: str = names.STORE
    min_rows: int = 15


def fetch(args: Args) -> None:
    check_ticker(args.ticker)
    start, end = data.parse_day(args.start, "start"), data.parse_day(args.end, "end")
    prices, served = price_store.load_prices(args.source, args.ticker, start, end, args.min_rows)
    for warning in prices.warnings:
        log.warning(warning)
    frame = prices.frame
    log.info("%d rows of %s from %s to %s", len(frame), args.ticker, prices.first_date, prices.last_date)
    source = prices_source(served.location, args.ticker, args.start, args.end)
    dataset = from_pandas(frame, source=source, name=f"{args.ticker} daily")
    log_dataset(dataset, context="prices")
    log_csv(frame, names.artifact(names.PRICES_DIR, names.PRICES_FILE), date_format="%Y-%m-%d")
    mlflow.log_metric("rows", len(frame))
    mlflow.set_tags(prices.tags(args.ticker) | served.tags() | {names.TAG_DATASET_DIGEST: dataset.digest})
    figure = plots.line_figure(frame["Date"], frame["Open"], f"{args.ticker} Open price", "Open")
    mlflow.log_figure(figure, names.plot("open_price"))


if __name__ == "__main__":
    run_step(Args, fetch)
