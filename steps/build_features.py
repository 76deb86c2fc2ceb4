"""build_features: the reference's training table from a fetch_data run's prices.

Reads: ``prices`` (a run URI such as ``runs:/<id>/prices``, or a CSV path).
Writes: ``features/training_data.csv`` (header ``0..window``, label last, rows in
time order, exactly the reference layout) and ``features/label_dates.csv``
(the day each row's label is about); metrics ``rows`` and ``up_rate``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow

from psystock import features
from psystock.entry_points import StepArgs
from psystock.mlflow_io import names
from psystock.mlflow_io.inputs import load_prices
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_csv

log = logging.getLogger("psystock.build_features")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "build_features"
    prices: str
    window: int = 14
    threshold: float = 0.00001


def build(args: Args) -> None:
    prices = load_prices(args.prices)
    labels = features.going_up(prices.frame, args.threshold)
    table = features.make_windows(labels, args.window)
    log.info("%d windows of %d days + label from %d days of prices", len(table), args.window, len(labels))
    log_csv(table, names.artifact(names.FEATURES_DIR, names.FEATURES_FILE))
    log_csv(
        table.index.to_frame(index=False),
        names.artifact(names.FEATURES_DIR, names.LABEL_DATES_FILE),
        date_format="%Y-%m-%d",
    )
    mlflow.log_metrics({"rows": len(table), "up_rate": float(table.iloc[:, -1].mean())})
    mlflow.set_tags(
        {
            names.TAG_FIRST_LABEL_DATE: str(table.index[0].date()),
            names.TAG_LAST_LABEL_DATE: str(table.index[-1].date()),
        }
    )


if __name__ == "__main__":
    run_step(Args, build)
