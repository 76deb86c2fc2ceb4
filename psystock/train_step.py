"""The body shared by the training entry points: ``train`` (any family, plugins included, its
hyper-parameters as one ``name=value,...`` string) and ``train_<family>`` (a built-in family,
its hyper-parameters as parameters of their own).

Reads ``training_data``; judges the family with its parameters by the
protocol (:mod:`psystock.protocol`): walk-forward cross-validation on the
development period, then a fit on all of it, with the framework's
autologging on, scored, bootstrapped and backtested on the holdout.
Writes the metrics (``cv_<score>_mean``/``_std``, ``cv_<metric>_fold_<k>``,
``test_<score>``, ``f1_experiment_score``, ``test_<metric>_ci_low``/``_high``,
``backtest_*``, ``buy_and_hold_*``), ``metrics.json``, ``cv/folds.csv``,
``holdout/predictions.csv``, ``backtest/returns.csv``, ``plots/`` (confusion
matrix; ROC, precision-recall and calibration curves; equity curve), the
model (signature and input example), the tag ``psystock.hyperparameters``
(every hyper-parameter, as ``train`` takes them) and, where the family
writes them, training logs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import mlflow

from psystock import names, protocol
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.model_outputs import log_evaluation, log_fitted_model
from psystock.models import Family, family_info, format_hyperparameters, get_family, parse_hyperparameters
from psystock.protocol import ScoringArgs
from psystock.training import family_candidate

log = logging.getLogger("psystock.train")


@dataclass(frozen=True, kw_only=True)
class TrainArgs(ScoringArgs):
    """The generic ``train`` entry point's arguments: the scoring ones, a family and its
    hyper-parameters (empty: the family's defaults)."""

    entry_point = "train"
    family: str = "logreg"
    hyperparameters: str = ""


def main(args_type: type[ScoringArgs], family_name: str) -> None:
    """Run ``train_<family_name>``; its arguments are the scoring ones plus the family's parameters."""
    family = get_family(family_name)
    run_step(args_type, lambda args: train(family, family.params(args), args), run_name=family.run_name)


def main_generic() -> None:
    """Run ``train``: any family by name, its hyper-parameters parsed from one string."""

    def body(args: TrainArgs) -> None:
        family = get_family(args.family)
        train(family, parse_hyperparameters(family, args.hyperparameters), args)

    run_step(TrainArgs, body, run_name=lambda args: family_info(args.family).run_name)


def train(family: Family[Any], params: Any, args: ScoringArgs) -> None:
    """Judge ``family`` with ``params`` by the protocol and log everything into the active run."""
    settings = args.settings()
    family.check_params(params)
    data = load_features(args.training_data)
    mlflow.set_tags(
        {
            names.TAG_FAMILY: family.name,
            names.TAG_ROLE: names.CANDIDATE,
            names.TAG_HYPERPARAMETERS: format_hyperparameters(family, params),
        }
    )
    log.info(
        "%s: %d-fold %s cross-validation on the development period, then the holdout (%d rows, test_size %s)",
        family.name,
        settings.cv_folds,
        settings.split,
        len(data),
        settings.test_size,
    )
    with tempfile.TemporaryDirectory() as log_dir:
        evaluation = protocol.evaluate(family_candidate(family, params, settings.seed, log_dir), data, settings)
        if any(os.scandir(log_dir)):
            mlflow.log_artifacts(log_dir, names.TRAINING_LOGS_DIR)
    log.info(
        "%s: cv %s %.4f ± %.4f, holdout %s",
        family.name,
        settings.metric,
        evaluation.cv_mean(settings.metric),
        evaluation.metrics()[names.cv_std(settings.metric)],
        evaluation.interval,
    )
    log_evaluation(evaluation, data, family.run_name)
    log_fitted_model(family, evaluation.model, evaluation.parts.X_train)
