"""main: the whole experiment, each step a child run launched with ``mlflow.run``.

Reads: the parameters of every step (ticker, dates, source, window, split, ...).
Writes: one child run per step (linked by ``mlflow.parentRunId``), tag
``psystock.step_runs`` (entry point -> run id), tag ``psystock.winner_family``
and, from the tuning run, ``tuned_<metric>`` and ``best_cv_f1``.
"""

import json
import logging

import mlflow

from psystock import pipeline, tracking
from psystock.validation import check_cv_folds, check_max_evals, check_split, check_window
from psystock.stepkit import run_step

log = logging.getLogger("psystock.main")


def main(args) -> None:
    check_split(args.split, args.test_size)
    check_window(args.window)
    check_max_evals(args.max_evals)
    check_cv_folds(args.cv_folds)
    run = mlflow.active_run()
    runner = pipeline.StepRunner(run.info.experiment_id, run.info.run_id, env_manager=args.env_manager)
    try:
        steps = pipeline.run_pipeline(args, runner)
    finally:
        mlflow.set_tag("psystock.step_runs", json.dumps(runner.launched))
    tuned = tracking.get_run(steps["tune"])
    compare = tracking.get_run(steps["compare"])
    mlflow.set_tag(tracking.TAG_WINNER_FAMILY, compare.data.tags[tracking.TAG_WINNER_FAMILY])
    mlflow.log_metrics(
        {f"tuned_{args.metric}": tuned.data.metrics[args.metric], "best_cv_f1": tuned.data.metrics["best_cv_f1"]}
    )
    log.info("pipeline finished: %s", ", ".join(f"{k}={v}" for k, v in steps.items()))


if __name__ == "__main__":
    run_step("main", main)
