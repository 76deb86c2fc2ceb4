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

import mlflow

from psystock.entry_points import ScoringArgs
from psystock.evaluation import split_dataset
from psystock.mlflow_io import names
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_evaluation, log_fitted_model
from psystock.models import get_family
from psystock.training import fit_and_score, split_summary

log = logging.getLogger("psystock.train")


def main(args_type: type[ScoringArgs], family_name: str) -> None:
    """Run ``train_<family_name>``; its arguments are the scoring ones plus the family's parameters."""
    family = get_family(family_name)
    run_step(args_type, lambda args: train(family_name, args), run_name=family.run_name)


def train(family_name: str, args: ScoringArgs) -> None:
    family = get_family(family_name)
    data = load_features(args.training_data)
    params = family.params(args)
    mlflow.set_tags({names.TAG_FAMILY: family.name, names.TAG_ROLE: names.CANDIDATE})
    family.autolog()
    log.info("fitting %s on %d rows (%s split, test_size %s)", family.name, len(data), args.split, args.test_size)
    parts = split_dataset(data, args.split, args.test_size, args.seed)
    with tempfile.TemporaryDirectory() as log_dir:
        result = fit_and_score(family, parts, params, args.seed, verbose=True, log_dir=log_dir)
        if any(os.scandir(log_dir)):
            mlflow.log_artifacts(log_dir, names.TRAINING_LOGS_DIR)
    log.info("%s: %s", family.name, ", ".join(f"{k}={v:.4f}" for k, v in result.scores.items()))

    mlflow.set_tags(split_summary(data, parts))
    log_evaluation(result.scores, parts.y_test, result.probabilities, family.run_name)
    log_fitted_model(family, result.model, parts.X_train)
