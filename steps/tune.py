"""tune: hyperopt TPE over one family's search space, one child run per trial.

Reads: ``training_data`` (as the training steps); tunes on the training split
only, scoring each trial by ``cv_folds``-fold cross-validation (walk-forward
folds for ``split=chronological``).
Writes: one nested child run per trial (sampled parameters, per-fold and mean
F1, loss, duration); on this run the best parameters (``best_*`` params),
``best_cv_f1``, the test-split scores of the model refit with them, the model,
``tuning/trials.csv`` and ``plots/tuning_loss.png``.
"""

import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from psystock import cli, tracking, tuning
from psystock.evaluation import split_dataset
from psystock.models import get_family
from psystock.plots import tuning_figure
from psystock.stepkit import run_step
from psystock.train_step import log_evaluation, log_fitted_model
from psystock.training import train_and_score

log = logging.getLogger("psystock.tune")


def tune(args) -> None:
    family = get_family(args.family)
    data = tracking.load_features(args.training_data)
    parts = split_dataset(data, args.split, args.test_size, args.seed)
    defaults = {name: cli.default_value(family.entry_point, name) for name in family.params}
    parent = mlflow.active_run()
    mlflow.set_tag(tracking.TAG_FAMILY, family.name)
    log.info("tuning %s: %d trials, %d-fold %s CV on %d rows", family.name, args.max_evals, args.cv_folds,
             args.split, len(parts.y_train))
    logger = tracking.TrialLogger(parent.info.experiment_id, parent.info.run_id, family.name)
    result = tuning.tune(
        family, parts.X_train, parts.y_train, split=args.split, n_folds=args.cv_folds,
        max_evals=args.max_evals, seed=args.seed, defaults=defaults, on_trial=logger.log,
    )
    best = result.best
    mlflow.log_params({f"best_{k}": v for k, v in best.params.items()})
    mlflow.log_metrics({"best_cv_f1": best.mean_score, "best_loss": best.loss, "trials": len(result.trials)})

    refit = train_and_score(family, data, args.split, args.test_size, args.seed, best.params)
    log.info("refit with the best parameters: %s", ", ".join(f"{k}={v:.4f}" for k, v in refit.scores.items()))
    log_evaluation(refit.scores, refit.split.y_test, refit.probabilities, f"tuned {family.name}")
    mlflow.log_figure(tuning_figure([t.loss for t in result.trials], f"{family.name}: TPE trials"),
                      f"{tracking.PLOTS_DIR}/tuning_loss.png")
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(
            {"trial": t.number, "loss": t.loss, "mean_f1": t.mean_score, "seconds": t.seconds, **t.params}
            for t in result.trials
        ).to_csv(Path(tmp, "trials.csv"), index=False)
        mlflow.log_artifacts(tmp, tracking.TUNING_DIR)
    log_fitted_model(family, refit.model, refit.split.X_train)


if __name__ == "__main__":
    run_step("tune", tune)
