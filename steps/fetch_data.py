"""fetch_data: daily bars of a ticker from Yahoo or a CSV in Yahoo's layout.

Reads: ``source`` (``yahoo`` or a CSV path/URL), filtered to ``start``..``end`` (inclusive).
Writes: ``prices/prices.csv`` (normalised bars), ``plots/open_price.png``, the
dataset as a run input (source and digest), metric ``rows``, tags
``first_date``/``last_date`` and the dataset digest.
"""

import logging
import tempfile
import warnings
from pathlib import Path

import mlflow

from psystock import data, plots, tracking
from psystock.stepkit import run_step

log = logging.getLogger("psystock.fetch_data")


def fetch(args) -> None:
    start = data.parse_day(args.start, "start")
    end = data.parse_day(args.end, "end")
    prices = data.load_prices(args.source, args.ticker, start, end, args.min_rows)
    for warning in prices.warnings:
        log.warning(warning)
    frame = prices.frame
    log.info("%d rows of %s from %s to %s", len(frame), args.ticker, prices.first_date, prices.last_date)

    dataset = mlflow.data.from_pandas(frame, source=_dataset_source(args), name=f"{args.ticker} daily")
    mlflow.log_input(dataset, context="prices")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, tracking.PRICES_FILE)
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")
        mlflow.log_artifact(str(path), tracking.PRICES_DIR)
    mlflow.log_metric("rows", len(frame))
    mlflow.set_tags(
        {
            "ticker": args.ticker,
            "first_date": prices.first_date,
            "last_date": prices.last_date,
            "range_warnings": str(len(prices.warnings)),
            tracking.TAG_DATASET_DIGEST: dataset.digest,
        }
    )
    figure = plots.line_figure(frame["Date"], frame["Open"], f"{args.ticker} Open price", "Open")
    mlflow.log_figure(figure, f"{tracking.PLOTS_DIR}/open_price.png")


def _dataset_source(args):
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    if args.source == data.YAHOO:
        return HTTPDatasetSource(f"https://finance.yahoo.com/quote/{args.ticker}/history?period1={args.start}&period2={args.end}")
    with warnings.catch_warnings():
        # A local path matches two artifact-source types that are the same to us.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        return resolve_dataset_source(args.source)


if __name__ == "__main__":
    run_step("fetch_data", fetch)
