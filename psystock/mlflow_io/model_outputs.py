"""What model and baseline steps write into their run: an evaluation with its plots, a fitted model.

Apart from :mod:`psystock.mlflow_io.outputs` so that the steps that only log
tables do not load (nor depend on, for the step cache) the model code.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from psystock import names
from psystock.evaluation import confusion, curves
from psystock.features import FeatureSet
from psystock.mlflow_io.outputs import log_csv
from psystock.models import Family
from psystock.plots import confusion_matrix_figure, curve_figure, equity_figure
from psystock.protocol import Evaluation
from psystock.training import split_summary


def log_evaluation(evaluation: Evaluation, data: FeatureSet, title: str) -> None:
    """Log what the protocol found: every metric (and ``metrics.json``), the per-fold scores, the
    holdout's answers and backtest, the split's extent as tags, and the plots: confusion matrix,
    for probabilities the ROC, precision-recall and calibration curves, and the equity curve."""
    found = evaluation.metrics()
    mlflow.log_metrics(found)
    mlflow.log_dict(found, names.METRICS_FILE)
    mlflow.set_tags(split_summary(data, evaluation.parts))
    log_csv(evaluation.folds_frame(), names.CV_FOLDS)
    holdout = evaluation.holdout
    log_csv(holdout.frame(), names.HOLDOUT_PREDICTIONS)
    matrix = confusion(holdout.truth, holdout.answers)
    mlflow.log_figure(confusion_matrix_figure(matrix, title), names.plot("confusion_matrix"))
    if len(np.unique(holdout.truth)) == 2 and evaluation.holdout_scores.keys() >= {"roc_auc"}:
        for kind, (x, y) in curves(holdout.truth, holdout.answers).items():
            mlflow.log_figure(curve_figure(kind, x, y, title), names.plot(f"{kind}_curve"))
    if evaluation.backtest is not None:
        log_csv(evaluation.backtest.days, names.BACKTEST_RETURNS)
        days = evaluation.backtest.days
        curves_by_name = {title: days["strategy"], "buy and hold": days["buy_and_hold"]}
        mlflow.log_figure(
            equity_figure(pd.to_datetime(days["date"]), curves_by_name, f"{title}: holdout"), names.plot("equity_curve")
        )


def log_fitted_model(family: Family[Any], model: Any, X_train: pd.DataFrame) -> None:
    """Log ``model`` as the run's model with its signature and a 5-row input example."""
    example = family.as_model_input(X_train.head(5))
    with warnings.catch_warnings():
        # The 0/1 features are never missing, so integer columns are safe.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example, np.asarray(family.predict_proba(model, example)))
        family.log_model(model, names.MODEL, signature, example)
