"""The body shared by the train_<family> steps (one family per entry point).

Reads ``training_data``; fits the family with its framework's autologging on;
writes test-split metrics (``f1_experiment_score`` and ``test_*``: accuracy,
balanced accuracy, precision, recall, MCC, ROC AUC, log loss, up-rate),
``metrics.json``, ``plots/`` (confusion matrix; ROC, precision-recall and
calibration curves), the model (signature and input example) and, where the
family writes them, training logs.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings

import mlflow
from mlflow.models import infer_signature

from psystock import tracking
from psystock.evaluation import confusion, curves
from psystock.models import get_family
from psystock.plots import confusion_matrix_figure, curve_figure
from psystock.stepkit import run_step
from psystock.training import split_summary, train_and_score

log = logging.getLogger("psystock.train")

TRAINING_LOGS = "training_logs"


def main(family_name: str, argv: list[str] | None = None) -> None:
    family = get_family(family_name)
    run_step(family.entry_point, lambda args: train(family_name, args), run_name=family.run_name, argv=argv)


def train(family_name: str, args) -> None:
    family = get_family(family_name)
    data = tracking.load_features(args.training_data)
    params = {name: args.values[name] for name in family.params}
    mlflow.set_tags({tracking.TAG_FAMILY: family.name, tracking.TAG_ROLE: tracking.CANDIDATE})
    family.autolog()
    log.info("fitting %s on %d rows (%s split, test_size %s)", family.name, len(data), args.split, args.test_size)
    with tempfile.TemporaryDirectory() as log_dir:
        result = train_and_score(
            family, data, args.split, args.test_size, args.seed, params, verbose=True, log_dir=log_dir
        )
        if any(os.scandir(log_dir)):
            mlflow.log_artifacts(log_dir, TRAINING_LOGS)
    log.info("%s: %s", family.name, ", ".join(f"{k}={v:.4f}" for k, v in result.scores.items()))

    mlflow.set_tags(split_summary(data, result.split))
    log_evaluation(result.scores, result.split.y_test, result.probabilities, family.run_name)
    log_fitted_model(family, result.model, result.split.X_train)


def log_evaluation(scores: dict, y_test, probabilities, title: str, probabilistic: bool = True) -> None:
    """Log test-split scores (metrics and ``metrics.json``), the confusion matrix
    and, for probabilistic predictions, the ROC, precision-recall and calibration curves."""
    mlflow.log_metrics(scores)
    mlflow.log_dict(scores, tracking.METRICS_FILE)
    figure = confusion_matrix_figure(confusion(y_test, probabilities), title)
    mlflow.log_figure(figure, f"{tracking.PLOTS_DIR}/confusion_matrix.png")
    if probabilistic:
        for kind, (x, y) in curves(y_test, probabilities).items():
            mlflow.log_figure(curve_figure(kind, x, y, title), f"{tracking.PLOTS_DIR}/{kind}_curve.png")


def log_fitted_model(family, model, X_train) -> None:
    """Log ``model`` as the run's model with its signature and a 5-row input example."""
    example = family.as_model_input(X_train.head(5))
    with warnings.catch_warnings():
        # The 0/1 features are never missing, so integer columns are safe.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example, family.predict_proba(model, example))
        family.log_model(model, tracking.MODEL, signature, example)
