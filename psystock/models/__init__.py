"""Model families behind one interface, so training and tuning share every fit.

A family module exposes ``FAMILY``: a :class:`Family` whose ``fit`` and
``predict_proba`` are the only code that builds and scores its model, and
whose hyper-parameters are the fields of one frozen dataclass (the same
parameters its ``train_<family>`` entry point declares in ``MLproject``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from psystock import PsystockError

P = TypeVar("P")


@dataclass(frozen=True)
class FamilyInfo:
    """What the pipeline needs to know of a family without importing its framework."""

    name: str
    run_name: str  # the reference's run name
    module: str
    cost: int  # relative training time: the costliest start first when steps queue

    @property
    def entry_point(self) -> str:
        return f"train_{self.name}"


FAMILIES = {
    info.name: info
    for info in (
        FamilyInfo("logreg", "logistic_regression_model_baseline", "logreg", cost=1),
        FamilyInfo("xgboost", "xgboost_model_baseline", "xgb", cost=1),
        FamilyInfo("keras", "keras_model_baseline", "keras_net", cost=3),
    )
}
FAMILY_NAMES = tuple(FAMILIES)


def _identity(X: pd.DataFrame) -> Any:
    return X


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Family(Generic[P]):
    """One model family: its :class:`FamilyInfo`, its hyper-parameters and its implementation.

    ``fit(X, y, params, seed, verbose, log_dir)`` returns a fitted model
    (a family may write training logs such as TensorBoard's into ``log_dir``);
    ``predict_proba(model, X)`` returns the probability of "up" per row;
    ``check_params(params)`` refuses invalid hyper-parameters with a PsystockError;
    ``search_space()`` returns a hyperopt space over fields of ``params_type``;
    ``as_model_input(X)`` turns a feature frame into what the logged model takes;
    ``autolog_flavor`` and ``model_flavor`` name the ``mlflow.<flavor>`` modules
    that autolog the framework and log its models; ``prepare()`` runs before
    the framework is first imported through MLflow.
    """

    info: FamilyInfo
    params_type: type[P]
    fit: Callable[..., Any]
    predict_proba: Callable[[Any, Any], np.ndarray]
    check_params: Callable[[P], None]
    search_space: Callable[[], dict[str, Any]]
    autolog_flavor: str
    model_flavor: str
    pip_requirements: tuple[str, ...]
    as_model_input: Callable[[pd.DataFrame], Any] = _identity
    prepare: Callable[[], None] = _nothing
    # A family whose fits cost a fixed set-up (Keras compiles and traces a network) may give a
    # trainer that pays it once for many fits, each equal to ``fit``'s:
    # trainer(params, seed)(X, y, verbose, log_dir) -> model, the model valid until its next fit.
    trainer: Callable[[P, int], Callable[..., Any]] | None = None
    log_model_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def run_name(self) -> str:
        return self.info.run_name

    @property
    def entry_point(self) -> str:
        return self.info.entry_point

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.params_type))  # type: ignore[arg-type]

    def defaults(self) -> P:
        """The family's hyper-parameters as ``train_<family>`` defaults them."""
        return self.params_type()

    def params(self, values: Mapping[str, Any] | object) -> P:
        """Hyper-parameters from a mapping (a search-space sample over the defaults) or from
        any object with those attributes (a step's arguments), each cast to its declared type."""
        types = {f.name: f.type for f in dataclasses.fields(self.params_type)}  # type: ignore[arg-type]
        defaults = self.defaults()
        if isinstance(values, Mapping):
            unknown = sorted(set(values) - set(types))
            if unknown:
                raise PsystockError(f"{self.name} has no parameters {', '.join(unknown)}")

            def get(name: str) -> Any:
                return values.get(name, getattr(defaults, name))
        else:

            def get(name: str) -> Any:
                return getattr(values, name)

        return self.params_type(**{name: _cast(get(name), kind) for name, kind in types.items()})

    def autolog(self) -> None:
        """Switch on the framework's MLflow autologging; models are logged by :meth:`log_model`."""
        import mlflow

        self.prepare()
        getattr(mlflow, self.autolog_flavor).autolog(log_models=False, log_datasets=False, silent=True)

    def log_model(self, model: Any, name: str, signature: Any, input_example: Any) -> Any:
        """Log ``model`` to the active run, with explicit pip requirements (inferring them costs seconds)."""
        import mlflow

        return getattr(mlflow, self.model_flavor).log_model(
            model,
            name=name,
            signature=signature,
            input_example=input_example,
            pip_requirements=list(self.pip_requirements),
            **dict(self.log_model_kwargs),
        )


def needs_scaling(X: Any) -> bool:
    """Whether features are anything but 0/1 flags: a model that is not scale-free then standardises
    them itself, inside the logged model, so that it is served the raw columns."""
    values = np.asarray(X, dtype=float)
    return not bool(np.isin(values, (0.0, 1.0)).all())


def _cast(value: Any, kind: Any) -> Any:
    """A hyper-parameter value as its field's type (``"int"``, ``"float"``, ``"str"``, as annotated)."""
    kind = kind if isinstance(kind, str) else kind.__name__
    if isinstance(value, np.generic):
        value = value.item()
    return {"int": int, "float": float, "str": str}[kind](value)


def family_info(name: str) -> FamilyInfo:
    """The family called ``name`` (no framework import); unknown names are a clear error."""
    if name not in FAMILIES:
        raise PsystockError(f"unknown model family {name!r}; choose one of {', '.join(FAMILY_NAMES)}")
    return FAMILIES[name]


def get_family(name: str) -> Family[Any]:
    """The family called ``name`` with its implementation (imports its framework)."""
    family: Family[Any] = importlib.import_module(f"psystock.models.{family_info(name).module}").FAMILY
    return family


def requirements(*packages: str) -> tuple[str, ...]:
    """Pinned pip requirements for a logged model, from the installed versions.

    Passing them explicitly spares MLflow the seconds it spends inferring them.
    """
    from importlib.metadata import version

    return tuple(f"{p}=={version(p)}" for p in ("mlflow", "pandas", "numpy", "scikit-learn", *packages))
