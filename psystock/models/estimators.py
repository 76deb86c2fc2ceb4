"""A model family from any estimator class that speaks scikit-learn's API.

Every scikit-learn classifier, LightGBM's ``LGBMClassifier`` and XGBoost's
``XGBClassifier`` take their settings as constructor keywords and answer
``fit`` and ``predict_proba``. Such a family is the estimator class, a frozen
dataclass of the hyper-parameters it exposes (their defaults are the
``train`` defaults) and a hyperopt search space over them::

    FAMILY = estimator_family(
        "knn",  # a plugin's name; a built-in family gives its line of BUILT_IN
        KNeighborsClassifier,
        KnnParams,
        search_space,
        scale=True,
    )

A hyper-parameter whose text is ``"None"`` reaches the estimator as ``None``.
The estimator's seed parameter (``random_state``) is set from the step's
``seed``; ``fixed`` settings are passed to every fit.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from psystock import PsystockError
from psystock.models import Family, FamilyInfo, needs_scaling, requirements, run_name_of


def estimator_family(
    info: FamilyInfo | str,
    estimator: type,
    params_type: type,
    search_space: Callable[[], dict[str, Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    check: Callable[[Any], None] | None = None,
    scale: bool = False,
    flavor: str = "sklearn",
    packages: tuple[str, ...] = (),
    trusted_types: tuple[str, ...] = (),
    seed_param: str = "random_state",
) -> Family[Any]:
    """The family of ``estimator`` with the hyper-parameters ``params_type`` declares.

    ``check`` refuses hyper-parameters beyond what the estimator's own validation does;
    ``scale`` standardises features other than 0/1 flags inside the model (for estimators that
    are not scale-free); ``flavor`` is the ``mlflow.<flavor>`` module that autologs and logs the
    model; ``packages`` are the pip requirements a served model needs beyond scikit-learn's;
    ``trusted_types`` the types a fitted model holds that skops (which ``mlflow.sklearn`` saves
    with) does not trust by itself, e.g. a nearest-neighbours model's tree and distance.
    A plugin gives its family's name alone (its entry point says where it lives); a built-in
    family gives its line of ``BUILT_IN``.
    """
    if isinstance(info, str):
        info = FamilyInfo(info, run_name_of(info), module="")
    settings = dict(fixed or {})
    takes_seed = seed_param in estimator().get_params()

    def build(params: Any, seed: int) -> Any:
        values = {name: _none(value) for name, value in dataclasses.asdict(params).items()}
        if takes_seed:
            values[seed_param] = seed
        return estimator(**settings, **values)

    def check_params(params: Any) -> None:
        if check is not None:
            check(params)
        model = build(params, 0)
        validate = getattr(model, "_validate_params", None)  # scikit-learn's own constraints
        if validate is not None:
            try:
                validate()
            except (TypeError, ValueError) as exc:
                raise PsystockError(f"{info.name}: {str(exc).splitlines()[0]}") from None

    def fit(
        X: pd.DataFrame,
        y: pd.Series,
        params: Any,
        seed: int,
        verbose: bool = False,
        log_dir: str | None = None,
    ) -> Any:
        check_params(params)
        model = build(params, seed)
        if scale and needs_scaling(X):
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            model = make_pipeline(StandardScaler(), model)
        with warnings.catch_warnings():
            # An estimator fit on a frame warns when it is later asked about an array.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return model.fit(X, y)

    def predict_proba(model: Any, X: Any) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return np.asarray(model.predict_proba(X)[:, 1])

    kwargs: tuple[tuple[str, Any], ...] = ()
    if flavor == "sklearn":
        # Served and loaded as pyfunc, a scikit-learn model answers P(down), P(up) per row.
        kwargs = (("pyfunc_predict_fn", "predict_proba"),)
        kwargs += (("skops_trusted_types", list(trusted_types)),) if trusted_types else ()
    return Family(
        info=info,
        params_type=params_type,
        fit=fit,
        predict_proba=predict_proba,
        check_params=check_params,
        search_space=search_space,
        autolog_flavor=flavor,
        model_flavor=flavor,
        pip_requirements=requirements(*packages),
        log_model_kwargs=kwargs,
        prepare=_quiet_sklearn_autolog,
    )


def _none(value: Any) -> Any:
    return None if value == "None" else value


def _quiet_sklearn_autolog() -> None:
    # MLflow's autologging calls log_loss with an argument scikit-learn 1.9 renamed.
    warnings.filterwarnings("ignore", message="`y_pred` was renamed", category=FutureWarning)
