"""build_features: a training table from a fetch_data run's prices, in one of the feature sets.

Reads: ``prices`` (a run URI such as ``runs:/<id>/prices``, or a CSV path).
Writes: ``features/training_data.csv`` (feature columns, the label last, rows
in time order; for ``features=updown`` exactly the reference layout, header
``0..window``), ``features/label_dates.csv`` (each row's label day and that
day's Open-to-Close and Close-to-Close returns, for backtests) and
``features/columns.csv`` (what each column means); metrics ``rows``,
``up_rate``, ``columns``; tags ``first_label_date``, ``last_label_date``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from psystock import features, names
from psystock.entry_points import StepArgs
from psystock.features import DEFAULT_FEATURES
from psystock.mlflow_io.inputs import load_prices
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_csv

log = logging.getLogger("psystock.build_features")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "build_features"
    prices: str
    features: str = DEFAULT_FEATURES
    window: int = 14
    threshold: float = 0.00001


def build(args: Args) -> None:
    prices = load_prices(args.prices)
    table = features.make_table(prices.frame, args.features, args.window, args.threshold)
    frame = table.frame
    log.info(
        "%d rows of %d %s features + label from %d days of prices",
        len(frame),
        frame.shape[1] - 1,
        args.features,
        len(prices.frame),
    )
    log_csv(frame, names.artifact(names.FEATURES_DIR, names.FEATURES_FILE))
    log_csv(
        table.returns.reset_index(), names.artifact(names.FEATURES_DIR, names.LABEL_DATES_FILE), date_format="%Y-%m-%d"
    )
    columns = pd.DataFrame({"column": list(table.descriptions), "description": list(table.descriptions.values())})
    log_csv(columns, names.artifact(names.FEATURES_DIR, names.FEATURE_COLUMNS_FILE))
    mlflow.log_metrics({"rows": len(frame), "up_rate": float(frame.iloc[:, -1].mean()), "columns": frame.shape[1] - 1})
    mlflow.set_tags(
        {
            names.TAG_FIRST_LABEL_DATE: str(frame.index[0].date()),
            names.TAG_LAST_LABEL_DATE: str(frame.index[-1].date()),
        }
    )


if __name__ == "__main__":
    run_step(Args, build)
