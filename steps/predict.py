"""predict: the next trading day's direction for a ticker, from its latest days.

Reads: ``model_uri`` (default ``models:/psystock-<ticker>@champion``) and
``prices`` (a run URI or CSV; default: the latest bars from ``source``,
fetched by the same code as fetch_data), turned into one row of the
``features`` set the model was trained on. The predicted day is the next one
of the series' own calendar: the next weekday for weekday data.
Writes: ``predictions.csv`` (ticker, as-of day, predicted day, direction,
probability), metric ``probability_up``, tags ``predicted_day``/``direction``;
prints ``<ticker> <day>: up (p=0.57)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from psystock import PsystockError, data, features, names
from psystock.entry_points import StepArgs
from psystock.features import DEFAULT_FEATURES
from psystock.mlflow_io.inputs import load_prices
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_csv
from psystock.tickers import check_ticker

log = logging.getLogger("psystock.predict")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "predict"
    ticker: str = "BTC-USD"
    model_uri: str = ""
    prices: str = ""
    source: str = data.YAHOO
    features: str = DEFAULT_FEATURES
    window: int = 14
    threshold: float = 0.00001


def predict(args: Args) -> None:
    check_ticker(args.ticker)
    if args.prices and args.source != data.YAHOO:
        raise PsystockError("give prices or source, not both: prices are the bars to predict from")
    model_uri = args.model_uri or names.model_alias_uri(names.model_name(args.ticker))
    model = _load(model_uri, args.ticker)
    prices = _prices(args)
    day = data.next_trading_day(prices.frame["Date"])
    latest = features.latest_features(prices.frame, args.features, args.window, pd.Timestamp(day), args.threshold)
    as_of = latest.index[-1].date()
    schema = model.metadata.get_input_schema()
    _check_columns(schema, latest, args.features)
    model_input = latest.to_numpy(dtype="float32") if schema is not None and schema.is_tensor_spec() else latest
    probability = float(np.clip(_probability_up(model.predict(model_input)), 0.0, 1.0))
    direction = "up" if probability > 0.5 else "down"
    frame = pd.DataFrame(
        [
            {
                "ticker": args.ticker,
                "as_of": as_of,
                "predicted_day": day,
                "direction": direction,
                "probability_up": probability,
                "model_uri": model_uri,
            }
        ]
    )
    log_csv(frame, names.PREDICTIONS_FILE)
    mlflow.log_metric("probability_up", probability)
    mlflow.set_tags(
        {names.TAG_PREDICTED_DAY: day.isoformat(), names.TAG_DIRECTION: direction, names.TAG_MODEL_URI: model_uri}
    )
    print(f"{args.ticker} {day}: {direction} (p={probability:.2f})", flush=True)


def _check_columns(schema: Any, row: pd.DataFrame, feature_set: str) -> None:
    """The model must take the feature set's columns: say which set it wants otherwise."""
    if schema is None:
        return
    if schema.is_tensor_spec():
        width = schema.inputs[0].shape[-1]
        expected = f"{width} columns"
        same = width in (-1, row.shape[1])
    else:
        names_ = schema.input_names()
        expected = ", ".join(map(str, names_[:4])) + (", ..." if len(names_) > 4 else "")
        same = list(names_) == list(row.columns)
    if not same:
        raise PsystockError(
            f"the model takes {expected}, not the {feature_set} features: pass the features "
            "set it was trained on (-P features=...)"
        )


def _load(model_uri: str, ticker: str) -> PyFuncModel:
    try:
        model: PyFuncModel = mlflow.pyfunc.load_model(model_uri)
        return model
    except MlflowException as exc:
        if "@" in model_uri and ("alias" in str(exc).lower() or "not found" in str(exc).lower()):
            raise PsystockError(
                f"no champion model for {ticker} yet ({model_uri}): run main, or register a tuned model"
            ) from None
        raise PsystockError(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}") from None


def _prices(args: Args) -> data.Prices:
    """The bars to predict from: given ones, a CSV source's latest, or Yahoo's recent days."""
    if args.prices:
        return load_prices(args.prices)
    if args.source != data.YAHOO:
        return data.validate_prices(data.read_csv(args.source, args.ticker), min_rows=args.window)
    today = date.today()
    # Enough calendar days for a window even on a stock exchange's calendar.
    start = today - timedelta(days=3 * args.window + 14)
    return data.load_prices(args.source, args.ticker, start, today, args.window)


def _probability_up(output: Any) -> float:
    """P(up) of the single row, whatever the flavor returns: a probability,
    a (down, up) pair, or a frame of either."""
    values = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output, dtype=float)
    if values.ndim == 2 and values.shape[1] == 2:
        return float(values[0, 1])
    return float(values.ravel()[0])


if __name__ == "__main__":
    run_step(Args, predict)
