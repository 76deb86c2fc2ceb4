"""predict: tomorrow's direction for a ticker from its latest window of days.

Reads: ``model_uri`` (default ``models:/psystock-<ticker>@champion``) and
``prices`` (a run URI or CSV; default: the latest bars from ``source``,
fetched by the same code as fetch_data).
Writes: ``predictions.csv`` (ticker, as-of day, predicted day, direction,
probability), metric ``probability_up``, tags ``predicted_day``/``direction``;
prints ``<ticker> <day>: up (p=0.57)``.
"""

import logging
import tempfile
from datetime import date, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from psystock import PsystockError, data, features, registry, tracking
from psystock.stepkit import run_step

log = logging.getLogger("psystock.predict")


def predict(args) -> None:
    model_uri = args.model_uri or f"models:/{registry.model_name(args.ticker)}@{registry.CHAMPION}"
    model = _load(model_uri, args.ticker)
    prices = _prices(args)
    latest = features.latest_features(features.going_up(prices.frame, args.threshold), args.window)
    as_of = latest.index[-1].date()
    schema = model.metadata.get_input_schema()
    model_input = latest.to_numpy(dtype="float32") if schema is not None and schema.is_tensor_spec() else latest
    probability = float(np.clip(_probability_up(model.predict(model_input)), 0.0, 1.0))
    day = as_of + timedelta(days=1)
    direction = "up" if probability > 0.5 else "down"
    frame = pd.DataFrame([{"ticker": args.ticker, "as_of": as_of, "predicted_day": day, "direction": direction,
                           "probability_up": probability, "model_uri": model_uri}])
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp, tracking.PREDICTIONS_FILE), index=False)
        mlflow.log_artifact(str(Path(tmp, tracking.PREDICTIONS_FILE)))
    mlflow.log_metric("probability_up", probability)
    mlflow.set_tags({"predicted_day": day.isoformat(), "direction": direction, "model_uri": model_uri})
    print(f"{args.ticker} {day}: {direction} (p={probability:.2f})", flush=True)


def _load(model_uri: str, ticker: str):
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except MlflowException as exc:
        if "@" in model_uri and ("alias" in str(exc).lower() or "not found" in str(exc).lower()):
            raise PsystockError(
                f"no champion model for {ticker} yet ({model_uri}): run main, or register a tuned model"
            ) from None
        raise PsystockError(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}") from None


def _prices(args):
    """The bars to predict from: given ones, a CSV source's latest, or Yahoo's recent days."""
    if args.prices:
        return tracking.load_prices_frame(args.prices)
    if args.source != data.YAHOO:
        return data.validate_prices(data.read_csv(args.source), min_rows=args.window)
    today = date.today()
    # Enough calendar days for a window even on a stock exchange's calendar.
    start = today - timedelta(days=3 * args.window + 14)
    return data.load_prices(args.source, args.ticker, start, today, args.window)


def _probability_up(output) -> float:
    """P(up) of the single row, whatever the flavor returns: a probability,
    a (down, up) pair, or a frame of either."""
    values = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output, dtype=float)
    if values.ndim == 2 and values.shape[1] == 2:
        return values[0, 1]
    return values.ravel()[0]


if __name__ == "__main__":
    run_step("predict", predict)
