"""XGBoost through ``xgb.train``, as the reference calls it."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from hyperopt import hp

from psystock import PsystockError
from psystock.models import FAMILIES, Family, requirements

OBJECTIVES = ("reg:squarederror", "binary:logistic")


def booster_params(params: dict, seed: int) -> dict:
    if params["objective"] not in OBJECTIVES:
        raise PsystockError(f"objective must be one of {', '.join(OBJECTIVES)}, got {params['objective']!r}")
    for name in ("subsample", "colsample_bytree"):
        if not 0 < float(params[name]) <= 1:
            raise PsystockError(f"{name} must be in (0, 1], got {params[name]}")
    if int(params["max_depth"]) < 1 or int(params["num_boost_round"]) < 1:
        raise PsystockError("max_depth and num_boost_round must be at least 1")
    return {
        "objective": params["objective"],
        "max_depth": int(params["max_depth"]),
        "eta": float(params["learning_rate"]),
        "subsample": float(params["subsample"]),
        "colsample_bytree": float(params["colsample_bytree"]),
        "min_child_weight": float(params["min_child_weight"]),
        "reg_lambda": float(params.get("reg_lambda", 1.0)),
        "seed": seed,
        "nthread": 1,
    }


def fit(X, y, params: dict, seed: int, verbose: bool = False, log_dir: str | None = None) -> xgb.Booster:
    dtrain = xgb.DMatrix(X, label=y)
    return xgb.train(booster_params(params, seed), dtrain, num_boost_round=int(params["num_boost_round"]))


def predict_proba(model: xgb.Booster, X) -> np.ndarray:
    # The reference's default objective is a regression on 0/1: clip it into [0, 1].
    return np.clip(model.predict(xgb.DMatrix(X)), 0.0, 1.0)


def search_space() -> dict:
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
    info=FAMILIES["xgboost"],
    params=("objective", "num_boost_round", "max_depth", "learning_rate", "subsample", "colsample_bytree", "min_child_weight"),
    fit=fit,
    predict_proba=predict_proba,
    search_space=search_space,
    autolog_flavor="xgboost",
    model_flavor="xgboost",
    pip_requirements=requirements("xgboost"),
)
