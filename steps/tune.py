"""tune: hyperopt TPE over one family's search space, one child run per trial.

Reads: ``training_data`` (as the training steps); tunes on the training split
only, scoring each trial by ``cv_folds``-fold cross-validation (walk-forward
folds for ``split=chronological``). ``max_evals`` trials at most, fewer with
``early_stop`` (trials without a better loss) or ``timeout`` (seconds). With
``spark_master`` (``local[2]``, ``spark://host:7077``) trials run through
hyperopt's SparkTrials, ``parallelism`` at a time.
Writes: one nested child run per trial, created where the trial ran (sampled
parameters, per-fold and mean F1, loss, duration); on this run the best
parameters (``best_*`` params, each a parameter of ``train_<family>``),
``best_cv_f1``, ``trials``, the test-split scores of the model refit with
them, the model, ``tuning/trials.csv``, ``plots/tuning_loss.png`` and
``plots/tuning_params.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from psystock import tuning
from psystock.entry_points import ScoringArgs
from psystock.evaluation import split_dataset
from psystock.mlflow_io import names
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import active_run, quiet_run_urls, run_step, this_process
from psystock.mlflow_io.outputs import log_csv, log_evaluation, log_fitted_model
from psystock.mlflow_io.trials import TrialLogger
from psystock.models import get_family
from psystock.plots import params_figure, tuning_figure
from psystock.training import fit_and_score

log = logging.getLogger("psystock.tune")


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs):
    entry_point = "tune"
    family: str = "logreg"
    max_evals: int = 10
    cv_folds: int = 5
    early_stop: int = 0
    timeout: float = 0.0
    parallelism: int = 0
    spark_master: str = ""


def tune(args: Args) -> None:
    family = get_family(args.family)
    settings = tuning.SearchSettings(
        args.max_evals, args.seed, args.early_stop, args.timeout, args.parallelism, args.spark_master
    )
    data = load_features(args.training_data)
    parts = split_dataset(data, args.split, args.test_size, args.seed)
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
        "tuning %s: up to %d trials, %d-fold %s CV on %d rows%s",
        family.name,
        args.max_evals,
        args.cv_folds,
        args.split,
        len(parts.y_train),
        f", on Spark {args.spark_master}" if args.spark_master else "",
    )
    logger = TrialLogger(parent.info.experiment_id, parent.info.run_id, family.name)
    with quiet_run_urls():
        result = tuning.tune(
            family,
            parts.X_train,
            parts.y_train,
            split=args.split,
            n_folds=args.cv_folds,
            settings=settings,
            log_trial=logger,
            on_trial=logger.number_trial,
        )
    best = result.best
    mlflow.log_params({f"{names.BEST_PARAM_PREFIX}{k}": v for k, v in best.params.items()})
    mlflow.log_metrics({names.BEST_CV_F1: best.mean_score, "best_loss": best.loss, "trials": len(result.trials)})
    mlflow.set_tags(
        {names.TAG_BEST_TRIAL_RUN: best.run_id or "", names.TAG_STOPPED_EARLY: str(result.stopped_early).lower()}
    )

    refit = fit_and_score(family, parts, family.params(best.params), args.seed)
    log.info("refit with the best parameters: %s", ", ".join(f"{k}={v:.4f}" for k, v in refit.scores.items()))
    log_evaluation(refit.scores, parts.y_test, refit.probabilities, f"tuned {family.name}")
    table = pd.DataFrame(
        {
            "trial": t.number,
            "loss": t.loss,
            "mean_f1": t.mean_score,
            "seconds": t.seconds,
            "run_id": t.run_id,
            **t.params,
        }
        for t in result.trials
    )
    mlflow.log_figure(tuning_figure(table["loss"].tolist(), f"{family.name}: TPE trials"), names.plot("tuning_loss"))
    mlflow.log_figure(
        params_figure(table, list(best.params), f"{family.name}: parameters vs loss"), names.plot("tuning_params")
    )
    log_csv(table, names.artifact(names.TUNING_DIR, names.TRIALS_FILE))
    log_fitted_model(family, refit.model, parts.X_train)


if __name__ == "__main__":
    run_step(Args, tune)
