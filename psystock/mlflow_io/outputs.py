"""What steps write into their run: tables, scores with their plots, fitted models."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from psystock.mlflow_io import names

if TYPE_CHECKING:  # the type only: a step that logs no model must not depend on the families' code
    from psystock.models import Family


def log_csv(frame: pd.DataFrame, artifact_path: str, **to_csv: Any) -> None:
    """Log ``frame`` as the CSV file ``artifact_path`` (``dir/name.csv``) of the active run."""
    path = PurePosixPath(artifact_path)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp, path.name)
        frame.to_csv(local, **{"index": False, **to_csv})
        mlflow.log_artifact(str(local), str(path.parent) if str(path.parent) != "." else None)


def log_evaluation(
    scores: Mapping[str, float], y_test: Any, probabilities: Any, title: str, probabilistic: bool = True
) -> None:
    """Log test-split scores (metrics and ``metrics.json``), the confusion matrix
    and, for probabilistic predictions, the ROC, precision-recall and calibration curves."""
    # Imported here: scikit-learn and matplotlib cost a second of start-up that steps
    # which only log tables (fetch_data, build_features) should not pay.
    from psystock.evaluation import confusion, curves
    from psystock.plots import confusion_matrix_figure, curve_figure

    mlflow.log_metrics(dict(scores))
    mlflow.log_dict(dict(scores), names.METRICS_FILE)
    mlflow.log_figure(confusion_matrix_figure(confusion(y_test, probabilities), title), names.plot("confusion_matrix"))
    if probabilistic:
        for kind, (x, y) in curves(y_test, probabilities).items():
            mlflow.log_figure(curve_figure(kind, x, y, title), names.plot(f"{kind}_curve"))


def log_fitted_model(family: Family[Any], model: Any, X_train: pd.DataFrame) -> None:
    """Log ``model`` as the run's model with its signature and a 5-row input example."""
    example = family.as_model_input(X_train.head(5))
    with warnings.catch_warnings():
        # The 0/1 features are never missing, so integer columns are safe.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example, np.asarray(family.predict_proba(model, example)))
        family.log_model(model, names.MODEL, signature, example)
