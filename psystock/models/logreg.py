"""Logistic regression (scikit-learn): the reference's winning family."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import hp
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from psystock import PsystockError
from psystock.models import BUILT_IN, Family, needs_scaling, requirements

SOLVERS = ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")
# Solvers that only fit a pure L2 penalty (l1_ratio 0); liblinear takes 0 or 1.
L2_ONLY = ("lbfgs", "newton-cg", "newton-cholesky", "sag")


@dataclass(frozen=True, kw_only=True)
class LogregParams:
    """scikit-learn's ``LogisticRegression`` settings; the defaults are the reference's ``LogisticRegression()``."""

    C: float = 1.0  # inverse regularisation strength
    l1_ratio: float = 0.0  # 0 = L2, 1 = L1, between = elastic net (`saga`)
    solver: str = "lbfgs"  # lbfgs, liblinear, newton-cg, newton-cholesky, sag or saga
    max_iter: int = 100  # iterations of the solver
    class_weight: str = "None"  # `None` or `balanced`


def _class_weight(value: str) -> str | None:
    # "None" is spelled as autologging logs the estimator's own parameter.
    return None if value in (None, "None") else value


def check_params(params: LogregParams) -> None:
    solver, l1_ratio = params.solver, params.l1_ratio
    if solver not in SOLVERS:
        raise PsystockError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if not 0 <= l1_ratio <= 1:
        raise PsystockError(f"l1_ratio must be between 0 and 1, got {l1_ratio}")
    if solver in L2_ONLY and l1_ratio != 0:
        raise PsystockError(f"solver {solver} supports only l1_ratio=0 (L2); use saga or liblinear")
    if solver == "liblinear" and l1_ratio not in (0, 1):
        raise PsystockError("solver liblinear supports l1_ratio 0 or 1 only; use saga for elastic net")
    if params.C <= 0:
        raise PsystockError(f"C must be > 0, got {params.C}")
    if _class_weight(params.class_weight) not in (None, "balanced"):
        raise PsystockError(f"class_weight must be None or balanced, got {params.class_weight!r}")


def fit(
    X: pd.DataFrame,
    y: pd.Series,
    params: LogregParams,
    seed: int,
    verbose: bool = False,
    log_dir: str | None = None,
) -> ClassifierMixin:
    """The reference's ``LogisticRegression``; on features other than 0/1 flags, after a
    ``StandardScaler`` in one scikit-learn pipeline (the regularisation then weighs every
    feature alike, and the logged model takes raw columns)."""
    check_params(params)
    model = LogisticRegression(
        C=params.C,
        l1_ratio=params.l1_ratio,
        solver=params.solver,
        max_iter=params.max_iter,
        class_weight=_class_weight(params.class_weight),
        random_state=seed,
    )
    estimator = make_pipeline(StandardScaler(), model) if needs_scaling(X) else model
    with warnings.catch_warnings():
        # Too few iterations is the user's choice (the reference's default is 100).
        warnings.filterwarnings("ignore", message=".*failed to converge.*")
        return estimator.fit(X, y)


def predict_proba(model: ClassifierMixin, X: Any) -> np.ndarray:
    return np.asarray(model.predict_proba(X)[:, 1])


def search_space() -> dict[str, Any]:
    return {
        "C": hp.loguniform("C", np.log(1e-3), np.log(1e2)),
        # Solver and penalty are drawn together so that every pair is valid.
        "penalty": hp.choice(
            "penalty",
            [
                {"solver": "lbfgs", "l1_ratio": 0.0},
                {"solver": "liblinear", "l1_ratio": 0.0},
                {"solver": "liblinear", "l1_ratio": 1.0},
                {"solver": "saga", "l1_ratio": hp.uniform("saga_l1_ratio", 0.0, 1.0)},
            ],
        ),
        "class_weight": hp.choice("class_weight", ["None", "balanced"]),
        "max_iter": 1000,
    }


def _quiet_autolog() -> None:
    # MLflow's autologging calls log_loss with an argument scikit-learn 1.9 renamed.
    warnings.filterwarnings("ignore", message="`y_pred` was renamed", category=FutureWarning)


FAMILY = Family(
    info=BUILT_IN["logreg"],
    params_type=LogregParams,
    fit=fit,
    predict_proba=predict_proba,
    check_params=check_params,
    search_space=search_space,
    autolog_flavor="sklearn",
    model_flavor="sklearn",
    prepare=_quiet_autolog,
    # Served and loaded as pyfunc, the model answers P(down), P(up) per row.
    log_model_kwargs=(("pyfunc_predict_fn", "predict_proba"),),
    pip_requirements=requirements(),
)
