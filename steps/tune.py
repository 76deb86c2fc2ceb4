"""tune: hyperopt TPE over one family's search space, one child run per trial.

Reads: ``training_data`` and the evaluation parameters (as the training steps).
Every trial is scored by the same cross-validation the models are scored by
(walk-forward on the development period for ``split=chronological``); the
loss is how far the mean CV ``metric`` falls short of the best
(``1 - mean``). ``max_evals`` trials at most, fewer with ``early_stop``
(trials without a better loss) or ``timeout`` (seconds). With
``spark_master`` (``local[2]``, ``spark://host:7077``) trials run through
hyperopt's SparkTrials, ``parallelism`` at a time.
Writes: one nested child run per trial, created where the trial ran (sampled
parameters, ``cv_<metric>_mean``, ``cv_<metric>_fold_<k>``, loss, duration);
on this run the best parameters (``best_*`` params, each a parameter of
``train_<family>``; all of them as tag ``psystock.hyperparameters``, as
``train`` takes them), ``best_cv_<metric>``, ``best_loss``, ``trials``; the
model refit with them on the whole development period and everything a
training run logs of it (CV, holdout scores, interval, backtest);
``tuning/trials.csv``, ``plots/tuning_loss.png`` and ``plots/tuning_params.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from psystock import names, protocol, this_process, tuning
from psystock.evaluation import split_dataset
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import active_run, quiet_run_urls, run_step
from psystock.mlflow_io.model_outputs import log_evaluation, log_fitted_model
from psystock.mlflow_io.outputs import log_csv
from psystock.mlflow_io.trials import TrialLogger
from psystock.models import format_hyperparameters, get_family
from psystock.plots import params_figure, tuning_figure
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
    settings = args.settings()
    search = tuning.SearchSettings(
        args.max_evals, args.seed, args.early_stop, args.timeout, args.parallelism, args.spark_master
    )
    data = load_features(args.training_data)
    development = split_dataset(data, args.split, args.test_size, args.seed)
    parent = active_run()
    backend = (
        f"SparkTrials {args.spark_master}, parallelism {args.parallelism or 'default'}"
        if args.spark_master
        else "Trials (sequential)"
    )
    mlflow.set_tags(
        {names.TAG_FAMILY: family.name, names.TAG_PROCESS: this_process(), names.TAG_TRIALS_BACKEND: backend}
    )
    log.info(
        "tuning %s: up to %d trials, %s by %d-fold %s CV on the %d development rows%s",
        family.name,
        args.max_evals,
        args.metric,
        args.cv_folds,
        args.split,
        len(development.y_train),
        f", on Spark {args.spark_master}" if args.spark_master else "",
    )
    logger = TrialLogger(parent.info.experiment_id, parent.info.run_id, family.name, args.metric)
    with quiet_run_urls():
        result = tuning.tune(
            family,
            development.X_train,
            development.y_train,
            split=args.split,
            n_folds=args.cv_folds,
            metric=args.metric,
            settings=search,
            on_trial=logger,
        )
        log.info("logging the last of %d trial runs", len(result.trials))
        run_ids = logger.flush()
    best = result.best
    mlflow.log_params({f"{names.BEST_PARAM_PREFIX}{k}": v for k, v in best.params.items()})
    mlflow.log_metrics(
        {names.best_cv(args.metric): best.mean_score, "best_loss": best.loss, "trials": len(result.trials)}
    )
    mlflow.set_tags(
        {
            names.TAG_HYPERPARAMETERS: format_hyperparameters(family, family.params(best.params)),
            names.TAG_BEST_TRIAL_RUN: run_ids.get(best.number, ""),
            names.TAG_STOPPED_EARLY: str(result.stopped_early).lower(),
        }
    )

    evaluation = protocol.evaluate(family_candidate(family, family.params(best.params), args.seed), data, settings)
    log.info(
        "refit on the development period: cv %s %.4f, holdout %s",
        args.metric,
        evaluation.cv_mean(args.metric),
        evaluation.interval,
    )
    log_evaluation(evaluation, data, f"tuned {family.name}")
    table = pd.DataFrame(
        {
            "trial": t.number,
            "loss": t.loss,
            names.cv_mean(args.metric): t.mean_score,
            "seconds": t.seconds,
            "run_id": run_ids.get(t.number, ""),
            **t.params,
        }
        for t in result.trials
    )
    loss_label = f"loss (1 - mean CV {args.metric})"
    mlflow.log_figure(
        tuning_figure(table["loss"].tolist(), f"{family.name}: TPE trials", loss_label), names.plot("tuning_loss")
    )
    mlflow.log_figure(
        params_figure(table, list(best.params), f"{family.name}: parameters vs loss"), names.plot("tuning_params")
    )
    log_csv(table, names.artifact(names.TUNING_DIR, names.TRIALS_FILE))
    log_fitted_model(family, evaluation.model, development.X_train)


if __name__ == "__main__":
    run_step(Args, tune)
