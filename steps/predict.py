"""predict: the next trading day's direction for a ticker, from its latest days.

Reads: ``model_uri`` (default ``models:/psystock-<ticker>@champion``) and
``prices`` (a run URI or CSV; default: the latest bars from ``source``,
fetched by the same code as fetch_data). A registered version builds its own
features from the bars (psystock.contract); ``features``, ``window`` and
``threshold`` only serve an older version that takes the feature row. The
predicted day is the next one of the series' own calendar: the next weekday
for weekday data.
Writes: ``predictions.csv`` (ticker, as-of day, predicted day, direction,
probability), metric ``probability_up``, tags ``predicted_day``/``direction``;
prints ``<ticker> <day>: up (p=0.57)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import mlflow

from psystock import PsystockError, names, price_store
from psystock.entry_points import StepArgs
from psystock.features import DEFAULT_FEATURES, bars_needed
from psystock.mlflow_io import serving
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
    source: str = names.STORE
    features: str = DEFAULT_FEATURES
    window: int = 14
    threshold: float = 0.00001


def predict(args: Args) -> None:
    check_ticker(args.ticker)
    if args.prices and args.source != names.STORE:
        raise PsystockError("give prices or source, not both: prices are the bars to predict from")
    model_uri = args.model_uri or names.model_alias_uri(names.model_name(args.ticker))
    with serving.loaded_model(model_uri, args.ticker) as model:
        recipe = serving.recipe_of(model)
        if recipe is not None:
            log.info("%s builds %s from the bars itself", model_uri, recipe.describe())
        needed = recipe.bars_needed if recipe else bars_needed(args.features, args.window)
        prices = (
            load_prices(args.prices)
            if args.prices
            else price_store.recent_prices(args.source, args.ticker, needed, date.today())
        )
        prediction = serving.predict_next_day(
            model, model_uri, args.ticker, prices.frame, args.features, args.window, args.threshold
        )
    log_csv(prediction.frame(), names.PREDICTIONS_FILE)
    mlflow.log_metric("probability_up", prediction.probability_up)
    mlflow.set_tags(prediction.tags())
    print(prediction, flush=True)


if __name__ == "__main__":
    run_step(Args, predict)
