"""build_features: the reference's training table from a fetch_data run's prices.

Reads: ``prices`` (a run URI such as ``runs:/<id>/prices``, or a CSV path).
Writes: ``features/training_data.csv`` (header ``0..window``, label last, rows in
time order, exactly the reference layout) and ``features/label_dates.csv``
(the day each row's label is about); metrics ``rows`` and ``up_rate``.
"""

import logging
import tempfile
from pathlib import Path

import mlflow

from psystock import features, tracking
from psystock.stepkit import run_step

log = logging.getLogger("psystock.build_features")


def build(args) -> None:
    prices = tracking.load_prices_frame(args.prices)
    labels = features.going_up(prices.frame, args.threshold)
    table = features.make_windows(labels, args.window)
    log.info("%d windows of %d days + label from %d days of prices", len(table), args.window, len(labels))
    with tempfile.TemporaryDirectory() as tmp:
        table.to_csv(Path(tmp, tracking.FEATURES_FILE), index=False)
        table.index.to_frame(index=False).to_csv(
            Path(tmp, tracking.LABEL_DATES_FILE), index=False, date_format="%Y-%m-%d"
        )
        mlflow.log_artifacts(tmp, tracking.FEATURES_DIR)
    mlflow.log_metrics({"rows": len(table), "up_rate": float(table.iloc[:, -1].mean())})
    mlflow.set_tags({"first_label_date": str(table.index[0].date()), "last_label_date": str(table.index[-1].date())})


if __name__ == "__main__":
    run_step("build_features", build)
