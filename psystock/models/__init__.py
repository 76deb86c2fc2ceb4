"""Model families behind one interface, so training and tuning share every fit.

A family module exposes ``FAMILY``: a :class:`Family` whose ``fit`` and
``predict_proba`` are the only code that builds and scores its model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from psystock import PsystockError

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


@dataclass(frozen=True)
class Family:
    """One model family: its :class:`FamilyInfo` and its implementation.

    ``fit(X, y, params, seed, verbose, log_dir)`` returns a fitted model
    (a family may write training logs such as TensorBoard's into ``log_dir``);
    ``predict_proba(model, X)`` returns the probability of "up" per row;
    ``search_space()`` returns a hyperopt space over ``params``;
    ``as_model_input(X)`` turns a feature frame into what the logged model takes;
    ``autolog_flavor`` and ``model_flavor`` name the ``mlflow.<flavor>`` modules
    that autolog the framework and log its models; ``prepare()`` runs before
    the framework is first imported through MLflow.
    """

    info: FamilyInfo
    params: tuple[str, ...]
    fit: Callable[..., Any]
    predict_proba: Callable[[Any, Any], Any]
    search_space: Callable[[], dict]
    autolog_flavor: str
    model_flavor: str
    pip_requirements: tuple[str, ...]
    as_model_input: Callable[[Any], Any] = lambda X: X
    prepare: Callable[[], None] = lambda: None
    log_model_kwargs: tuple[tuple[str, Any], ...] = ()

    def autolog(self) -> None:
        """Switch on the framework's MLflow autologging; models are logged by :meth:`log_model`."""
        import mlflow

        self.prepare()
        getattr(mlflow, self.autolog_flavor).autolog(log_models=False, log_datasets=False, silent=True)

    def log_model(self, model, name: str, signature, input_example):
        """Log ``model`` to the active run, with explicit pip requirements (inferring them costs seconds)."""
        import mlflow

        return getattr(mlflow, self.model_flavor).log_model(
            model, name=name, signature=signature, input_example=input_example,
            pip_requirements=list(self.pip_requirements), **dict(self.log_model_kwargs),
        )

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def run_name(self) -> str:
        return self.info.run_name

    @property
    def entry_point(self) -> str:
        return self.info.entry_point


def family_info(name: str) -> FamilyInfo:
    """The family called ``name`` (no framework import); unknown names are a clear error."""
    if name not in FAMILIES:
        raise PsystockError(f"unknown model family {name!r}; choose one of {', '.join(FAMILY_NAMES)}")
    return FAMILIES[name]


def get_family(name: str) -> Family:
    """The family called ``name`` with its implementation (imports its framework)."""
    return importlib.import_module(f"psystock.models.{family_info(name).module}").FAMILY


def requirements(*packages: str) -> tuple[str, ...]:
    """Pinned pip requirements for a logged model, from the installed versions.

    Passing them explicitly spares MLflow the seconds it spends inferring them.
    """
    from importlib.metadata import version

    return tuple(f"{p}=={version(p)}" for p in ("mlflow", "pandas", "numpy", "scikit-learn", *packages))
