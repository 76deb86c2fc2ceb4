"""The model every registered version is: one pyfunc that keeps :mod:`psystock.contract`.

It wraps the family's fitted model, saved by the family's own MLflow flavour
as an artifact, and its :class:`~psystock.contract.Recipe`; asked with bars,
it builds the feature row with the code ``build_features`` uses and answers
with the family's own ``predict_proba``. ``predict`` and ``mlflow models
serve`` load this same model. Serving needs psystock importable (and a
plugin family's package installed): serve with ``--env-manager local`` from
the project's environment.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

from psystock import PsystockError, contract, names
from psystock.contract import Recipe
from psystock.models import Family, get_family, requirements

FAMILY_MODEL = "family_model"  # the artifact: the fitted model as its flavour saves it

_BARS: list[ColSpec | TensorSpec] = [ColSpec(DataType.datetime, "Date")]
_BARS += [ColSpec(DataType.double, c) for c in contract.BARS[1:]]
_ANSWER: list[ColSpec | TensorSpec] = [
    ColSpec(DataType.string, "day"),
    ColSpec(DataType.double, "p_up"),
    ColSpec(DataType.string, "direction"),
]
SIGNATURE = ModelSignature(
    inputs=Schema(_BARS),
    outputs=Schema(_ANSWER),
    params=ParamSchema([ParamSpec(contract.HISTORY, DataType.boolean, False)]),
)


class NextDayModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """Bars in, the next day's ``day, p_up, direction`` out, whatever the family; with
    ``params={"history": True}``, the answer of every day the bars before it can predict."""

    def load_context(self, context: Any) -> None:
        recipe = Recipe.from_config(context.model_config)
        if recipe is None:
            raise MlflowException(f"the model's configuration does not name contract {contract.CONTRACT}")
        self._recipe = recipe
        self._family = get_family(recipe.family)
        self._family.prepare()
        flavor = getattr(mlflow, self._family.model_flavor)
        self._model = flavor.load_model(context.artifacts[FAMILY_MODEL])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        history = bool((params or {}).get(contract.HISTORY, False))
        try:
            if history:
                rows = self._recipe.history_input(model_input)
                days = pd.DatetimeIndex(rows.index)
            else:
                rows, day = self._recipe.model_input(model_input)
                days = pd.DatetimeIndex([day])
        except PsystockError as exc:
            # The scoring server answers an MlflowException of this code with a 400 and its message.
            raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from None
        return contract.answers(days, self._family.predict_proba(self._model, self._family.as_model_input(rows)))


def log_served_model(family: Family[Any], model: Any, recipe: Recipe, bars: pd.DataFrame) -> None:
    """Log ``model`` as the active run's model, wrapped in the contract, with the last
    ``recipe.bars_needed`` of ``bars`` as its input example."""
    example = bars.loc[:, list(contract.BARS)].tail(recipe.bars_needed).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / FAMILY_MODEL
        family.save_model(model, str(saved))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            mlflow.pyfunc.log_model(
                name=names.MODEL,
                python_model=NextDayModel(),
                artifacts={FAMILY_MODEL: str(saved)},
                model_config=recipe.config(),
                metadata=recipe.config(),
                signature=SIGNATURE,
                input_example=example,
                pip_requirements=sorted({*family.pip_requirements, *requirements(*recipe.packages)}),
            )
