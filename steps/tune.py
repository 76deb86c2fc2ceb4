"""tune: hyperopt TPE over one family's search space, one child run per trial.

Reads: ``training_data`` (as the training steps); tunes on the training split
only, scoring each trial by ``cv_folds``-fold cross-validation (walk-forward
folds for ``split=chronological``). ``max_evals`` trials at most, fewer with
``early_stop`` (trials without a better loss) or ``timeout`` (seconds). With
``spark_master`` (``local[2]``, ``spark://host:7077``) trials run through
hyperopt's SparkTrials, ``parallelism`` at a time.
Writes: one nested child run per trial, created where the trial ran (sampled
parameters, per-fold and mean F1, loss, duration); on this run the best
parameters (``best_*`` params), ``best_cv_f1``, ``trials``, the test-split
scores of the model refit with them, the model, ``tuning/trials.csv``,
``plots/tuning_loss.png`` and ``plots/tuning_params.png``.
"""

import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from psystock import cli, tracking, tuning
from psystock.evaluation import split_dataset
from psystock.models import get_family
from psystock.plots import params_figure, tuning_figure
from psystock.stepkit import run_step
from psystock.train_step import log_evaluation, log_fitted_model
from psystock.training import fit_and_score

log = logging.getLogger("psystock.tune")


def tune(args) -> None:
    family = get_family(args.family)
    settings = tuning.SearchSettings(args.max_evals, args.seed, args.early_stop, args.timeout, args.parallelism,
                                     args.spark_master)
    data = tracking.load_features(args.training_data)
    parts = split_dataset(data, args.split, args.test_size, args.seed)
    defaults = {name: cli.default_value(family.entry_point, name) for name in family.params}
    parent = mlflow.active_run()
    mlflow.set_tags({
        tracking.TAG_FAMILY: family.name,
        tracking.TAG_PROCESS: tracking.this_process(),
        "psystock.trials_backend": (f"SparkTrials {args.spark_master}, parallelism {args.parallelism or 'default'}"
                                    if args.spark_master else "Trials (sequential)"),
    })
    log.info("tuning %s: up to %d trials, %d-fold %s CV on %d rows%s", family.name, args.max_evals,
             args.cv_folds, args.split, len(parts.y_train),
             f", on Spark {args.spark_master}" if args.spark_master else "")
    logger = tracking.TrialLogger(parent.info.experiment_id, parent.info.run_id, family.name)
    with tracking.quiet_run_urls():
        result = tuning.tune(
            family, parts.X_train, parts.y_train, split=args.split, n_folds=args.cv_folds, settings=settings,
            defaults=defaults, log_trial=logger, on_trial=logger.number_trial,
        )
    best = result.best
    mlflow.log_params({f"best_{k}": v for k, v in best.params.items()})
    mlflow.log_metrics({"best_cv_f1": best.mean_score, "best_loss": best.loss, "trials": len(result.trials)})
    mlflow.set_tags({"best_trial_run_id": best.run_id or "", "stopped_early": str(result.stopped_early).lower()})

    refit = fit_and_score(family, parts, best.params, args.seed)
    log.info("refit with the best parameters: %s", ", ".join(f"{k}={v:.4f}" for k, v in refit.scores.items()))
    log_evaluation(refit.scores, refit.split.y_test, refit.probabilities, f"tuned {family.name}")
    table = pd.DataFrame(
        {"trial": t.number, "loss": t.loss, "mean_f1": t.mean_score, "seconds": t.seconds, "run_id": t.run_id,
         **t.params}
        for t in result.trials
    )
    mlflow.log_figure(tuning_figure(table["loss"].tolist(), f"{family.name}: TPE trials"),
                      f"{tracking.PLOTS_DIR}/tuning_loss.png")
    mlflow.log_figure(params_figure(table, list(best.params), f"{family.name}: parameters vs loss"),
                      f"{tracking.PLOTS_DIR}/tuning_params.png")
    with tempfile.TemporaryDirectory() as tmp:
        table.to_csv(Path(tmp, "trials.csv"), index=False)
        mlflow.log_artifacts(tmp, tracking.TUNING_DIR)
    log_fitted_model(family, refit.model, refit.split.X_train)


if __name__ == "__main__":
    run_step("tune", tune)
