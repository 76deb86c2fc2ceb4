"""A registered model asked for tomorrow: loaded by URI and given the bars (a model that keeps
:mod:`psystock.contract`, as every version registered now does) or, for an older version that
takes a feature row, the row of the feature set it was trained on."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from psystock import PsystockError, contract, data, features, names
from psystock.contract import Recipe


@dataclass(frozen=True)
class Prediction:
    ticker: str
    as_of: date  # the last day the model saw
    day: date  # the day predicted: the next one of the series' calendar
    probability_up: float
    model_uri: str

    @property
    def direction(self) -> str:
        return contract.direction(self.probability_up)

    def frame(self) -> pd.DataFrame:
        """``predictions.csv``: one row."""
        return pd.DataFrame(
            [
                {
                    "ticker": self.ticker,
                    "as_of": self.as_of,
                    "predicted_day": self.day,
                    "direction": self.direction,
                    "probability_up": self.probability_up,
                    "model_uri": self.model_uri,
                }
            ]
        )

    def tags(self) -> dict[str, str]:
        return {
            names.TAG_PREDICTED_DAY: self.day.isoformat(),
            names.TAG_DIRECTION: self.direction,
            names.TAG_MODEL_URI: self.model_uri,
        }

    def __str__(self) -> str:
        return f"{self.ticker} {self.day}: {self.direction} (p={self.probability_up:.2f})"


@contextlib.contextmanager
def loaded_model(model_uri: str, ticker: str) -> Iterator[PyFuncModel]:
    """The model at ``model_uri`` as pyfunc while the block runs, its files downloaded into a
    temporary directory removed when it ends; a missing champion says how to get one."""
    with tempfile.TemporaryDirectory() as files:
        try:
            model: PyFuncModel = mlflow.pyfunc.load_model(model_uri, dst_path=files)
        except MlflowException as exc:
            if "@" in model_uri and ("alias" in str(exc).lower() or "not found" in str(exc).lower()):
                raise PsystockError(
                    f"no champion model for {ticker} yet ({model_uri}): run main, or register a tuned model"
                ) from None
            raise PsystockError(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}") from None
        yield model


def recipe_of(model: PyFuncModel) -> Recipe | None:
    """How the model builds its features from bars, if it keeps the serving contract."""
    return Recipe.from_config(model.metadata.metadata)


def predict_next_day(
    model: PyFuncModel,
    model_uri: str,
    ticker: str,
    prices: pd.DataFrame,
    feature_set: str,
    window: int,
    threshold: float,
) -> Prediction:
    """The model's answer for the day after the last of ``prices``: a model that keeps the contract
    is given the bars and builds its own features (``feature_set``, ``window`` and ``threshold``
    are then its own, not these); an older one, the row of ``feature_set`` those bars give (built
    by the same code as ``build_features``)."""
    as_of = pd.Timestamp(prices["Date"].iloc[-1]).date()
    recipe = recipe_of(model)
    if recipe is not None:
        try:
            answer = pd.DataFrame(model.predict(prices.loc[:, list(contract.BARS)]))
        except MlflowException as exc:
            raise PsystockError(f"model {model_uri}: {exc.message}") from None
        day = date.fromisoformat(str(answer["day"].iloc[0]))
        return Prediction(ticker, as_of, day, float(answer["p_up"].iloc[0]), model_uri)
    day = data.next_trading_day(prices["Date"])
    latest = features.latest_features(prices, feature_set, window, pd.Timestamp(day), threshold)
    schema = model.metadata.get_input_schema()
    check_columns(schema, latest, feature_set)
    tensor = schema is not None and schema.is_tensor_spec()
    output = model.predict(latest.to_numpy(dtype="float32") if tensor else latest)
    probability = float(np.clip(probability_up(output), 0.0, 1.0))
    return Prediction(ticker, latest.index[-1].date(), day, probability, model_uri)


def check_columns(schema: Any, row: pd.DataFrame, feature_set: str) -> None:
    """The model must take the feature set's columns: say which set it wants otherwise."""
    if schema is None:
        return
    if schema.is_tensor_spec():
        width = schema.inputs[0].shape[-1]
        expected = f"{width} columns"
        same = width in (-1, row.shape[1])
    else:
        columns = schema.input_names()
        expected = ", ".join(map(str, columns[:4])) + (", ..." if len(columns) > 4 else "")
        same = list(columns) == list(row.columns)
    if not same:
        raise PsystockError(
            f"the model takes {expected}, not the {feature_set} features: pass the features "
            "set it was trained on (-P features=...)"
        )


def probability_up(output: Any) -> float:
    """P(up) of the single row, whatever the flavour returns: a probability,
    a (down, up) pair, or a frame of either."""
    values = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output, dtype=float)
    if values.ndim == 2 and values.shape[1] == 2:
        return float(values[0, 1])
    return float(values.ravel()[0])
