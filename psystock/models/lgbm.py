"""LightGBM through ``lightgbm.train`` (its native API, which MLflow's lightgbm autologging records):
gradient-boosted trees grown leaf-wise, Qlib's strongest baseline family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from hyperopt import hp

from psystock import PsystockError
from psystock.models import BUILT_IN, Family, requirements


@dataclass(frozen=True, kw_only=True)
class LightgbmParams:
    """``lightgbm.train`` settings; LightGBM's own defaults, but ``min_child_samples`` (20 -> 50:
    a leaf of a few noisy days says nothing) and 100 rounds."""

    num_boost_round: int = 100  # boosting rounds
    num_leaves: int = 31  # leaves per tree (trees grow leaf-wise)
    learning_rate: float = 0.1  # shrinkage of each tree
    min_child_samples: int = 50  # fewest training days in a leaf
    subsample: float = 1.0  # rows bagged per tree, in (0, 1]
    colsample_bytree: float = 1.0  # columns sampled per tree, in (0, 1]
    reg_lambda: float = 0.0  # L2 regularisation of leaf weights


def check_params(params: LightgbmParams) -> None:
    if params.num_boost_round < 1 or params.num_leaves < 2:
        raise PsystockError("num_boost_round must be at least 1 and num_leaves at least 2")
    if params.learning_rate <= 0:
        raise PsystockError(f"learning_rate must be > 0, got {params.learning_rate}")
    if params.min_child_samples < 1:
        raise PsystockError(f"min_child_samples must be at least 1, got {params.min_child_samples}")
    for name in ("subsample", "colsample_bytree"):
        if not 0 < getattr(params, name) <= 1:
            raise PsystockError(f"{name} must be in (0, 1], got {getattr(params, name)}")
    if params.reg_lambda < 0:
        raise PsystockError(f"reg_lambda must be >= 0, got {params.reg_lambda}")


def booster_params(params: LightgbmParams, seed: int) -> dict[str, Any]:
    check_params(params)
    return {
        "objective": "binary",
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "min_child_samples": params.min_child_samples,
        "bagging_fraction": params.subsample,
        "bagging_freq": 1 if params.subsample < 1 else 0,
        "feature_fraction": params.colsample_bytree,
        "lambda_l2": params.reg_lambda,
        "seed": seed,
        # One thread, in a fixed order: the same seed gives the same model, to the last digit.
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def fit(
    X: pd.DataFrame,
    y: pd.Series,
    params: LightgbmParams,
    seed: int,
    verbose: bool = False,
    log_dir: str | None = None,
) -> lgb.Booster:
    data = lgb.Dataset(X, label=y, params={"verbose": -1})
    return lgb.train(booster_params(params, seed), data, num_boost_round=params.num_boost_round)


def predict_proba(model: lgb.Booster, X: Any) -> np.ndarray:
    return np.asarray(model.predict(X))


def search_space() -> dict[str, Any]:
    return {
        "num_boost_round": hp.uniformint("num_boost_round", 20, 400),
        "num_leaves": hp.uniformint("num_leaves", 4, 64),
        "learning_rate": hp.loguniform("learning_rate", np.log(0.01), np.log(0.3)),
        "min_child_samples": hp.uniformint("min_child_samples", 10, 200),
        "subsample": hp.uniform("subsample", 0.5, 1.0),
        "colsample_bytree": hp.uniform("colsample_bytree", 0.5, 1.0),
        "reg_lambda": hp.loguniform("reg_lambda", np.log(1e-3), np.log(10)),
    }


FAMILY = Family(
    info=BUILT_IN["lightgbm"],
    params_type=LightgbmParams,
    fit=fit,
    predict_proba=predict_proba,
    check_params=check_params,
    search_space=search_space,
    autolog_flavor="lightgbm",
    model_flavor="lightgbm",
    pip_requirements=requirements("lightgbm"),
)
