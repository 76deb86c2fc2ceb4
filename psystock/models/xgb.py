"""XGBoost through ``xgb.train``, as the reference calls it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from hyperopt import hp

from psystock import PsystockError
from psystock.models import BUILT_IN, Family, requirements

OBJECTIVES = ("reg:squarederror", "binary:logistic")


@dataclass(frozen=True, kw_only=True)
class XgboostParams:
    """``xgb.train`` settings; the defaults are XGBoost's own, as the reference's ``params={}`` gives them."""

    objective: str = "reg:squarederror"  # the reference's `params={}` default, or `binary:logistic`
    num_boost_round: int = 10  # boosting rounds
    max_depth: int = 6  # tree depth
    learning_rate: float = 0.3  # XGBoost's `eta`
    subsample: float = 1.0  # rows sampled per tree, in (0, 1]
    colsample_bytree: float = 1.0  # columns sampled per tree, in (0, 1]
    min_child_weight: float = 1.0  # minimum hessian weight in a leaf
    reg_lambda: float = 1.0  # L2 regularisation of leaf weights


def check_params(params: XgboostParams) -> None:
    if params.objective not in OBJECTIVES:
        raise PsystockError(f"objective must be one of {', '.join(OBJECTIVES)}, got {params.objective!r}")
    for name in ("subsample", "colsample_bytree"):
        if not 0 < getattr(params, name) <= 1:
            raise PsystockError(f"{name} must be in (0, 1], got {getattr(params, name)}")
    if params.max_depth < 1 or params.num_boost_round < 1:
        raise PsystockError("max_depth and num_boost_round must be at least 1")
    if params.reg_lambda < 0:
        raise PsystockError(f"reg_lambda must be >= 0, got {params.reg_lambda}")


def booster_params(params: XgboostParams, seed: int) -> dict[str, Any]:
    check_params(params)
    return {
        "objective": params.objective,
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "reg_lambda": params.reg_lambda,
        "seed": seed,
        "nthread": 1,
    }


def fit(
    X: pd.DataFrame,
    y: pd.Series,
    params: XgboostParams,
    seed: int,
    verbose: bool = False,
    log_dir: str | None = None,
) -> xgb.Booster:
    dtrain = xgb.DMatrix(X, label=y)
    return xgb.train(booster_params(params, seed), dtrain, num_boost_round=params.num_boost_round)


def predict_proba(model: xgb.Booster, X: Any) -> np.ndarray:
    # The reference's default objective is a regression on 0/1: clip it into [0, 1].
    return np.asarray(np.clip(model.predict(xgb.DMatrix(X)), 0.0, 1.0))


def search_space() -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "max_depth": hp.uniformint("max_depth", 1, 8),
        "learning_rate": hp.loguniform("learning_rate", np.log(0.01), np.log(0.5)),
        "num_boost_round": hp.uniformint("num_boost_round", 10, 300),
        "subsample": hp.uniform("subsample", 0.5, 1.0),
        "colsample_bytree": hp.uniform("colsample_bytree", 0.5, 1.0),
        "min_child_weight": hp.loguniform("min_child_weight", np.log(0.5), np.log(20)),
        "reg_lambda": hp.loguniform("reg_lambda", np.log(0.1), np.log(10)),
    }


FAMILY = Family(
    info=BUILT_IN["xgboost"],
    params_type=XgboostParams,
    fit=fit,
    predict_proba=predict_proba,
    check_params=check_params,
    search_space=search_space,
    autolog_flavor="xgboost",
    model_flavor="xgboost",
    pip_requirements=requirements("xgboost"),
)
