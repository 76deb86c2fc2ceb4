"""tune: hyperopt TPE over one family's search space, one child run per trial.

Every trial is scored by the cross-validation the models are scored by; the
loss is ``1 - mean CV metric``. ``max_evals`` trials at most, fewer with
``early_stop`` or ``timeout``; with ``spark_master``, through SparkTrials.
Logs the best parameters (``best_*``, and tag ``psystock.hyperparameters`` as
``train`` takes them), the trials table and plots, and the model refit with
them, scored as a training run is, its cross-validation from the best trial's
answers on the folds (docs/entry-points.md#tune).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psystock import protocol, tuning
from psystock.evaluation import split_dataset
from psystock.mlflow_io import trials
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.model_outputs import log_evaluation, log_fitted_model
from psystock.models import get_family
from psystock.protocol import ScoringArgs
from psystock.training import family_candidate

log = logging.getLogger("psystock.tune")


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs):
    entry_point = "tune"
    family: str = "logreg"
    max_evals: int = 10
    early_stop: int = 0
    timeout: float = 0.0
    parallelism: int = 0
    spark_master: str = ""


def tune(args: Args) -> None:
    family = get_family(args.family)
    search = tuning.SearchSettings(
        args.max_evals, args.seed, args.early_stop, args.timeout, args.parallelism, args.spark_master
    )
    data = load_features(args.training_data)
    development = split_dataset(data, args.split, args.test_size, args.seed)
    result = trials.search(
        family,
        development.X_train,
        development.y_train,
        split=args.split,
        n_folds=args.cv_folds,
        metric=args.metric,
        settings=search,
    )
    evaluation = protocol.evaluate(
        family_candidate(family, family.params(result.best.params), args.seed),
        data,
        args.settings(),
        fold_answers=result.best.fold_answers,
    )
    log.info(
        "refit on the development period: cv %s %.4f, holdout %s",
        args.metric,
        evaluation.cv_mean(args.metric),
        evaluation.interval,
    )
    log_evaluation(evaluation, data, f"tuned {family.name}")
    log_fitted_model(family, evaluation.model, development.X_train)


if __name__ == "__main__":
    run_step(Args, tune)
