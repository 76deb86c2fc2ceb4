"""main: the whole experiment, each step a child run launched with ``mlflow.run``.

Reads: the parameters of every step (ticker, dates, source, window, split, ...),
forwarded by name (see :func:`psystock.pipeline.forwarded`).
Runs fetch_data, build_features, the trainings and baselines (concurrently,
``max_parallel``), compare, tune (best model family), register (the gate,
``min_improvement``) and, once a champion exists, predict. Reuses a step's
earlier FINISHED run when its cache key matches (``use_cache``; ``rerun``
forces named steps).
Writes: one child run per step (linked by ``mlflow.parentRunId``; a cached step
as a small run pointing at the reused one), tags ``psystock.step_runs``
(entry point -> run id), ``psystock.cached_steps``, ``psystock.winner_family``,
``psystock.registry_decision``, ``psystock.champion`` and, from the tuning
run, metrics ``tuned_<metric>`` and ``best_cv_f1``.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # the steps' servers import MLflow as this process does, not after it
    from psystock import forking

    forking.warm_up_driver(sys.argv[1:])

import json
import os

import mlflow

from psystock import names, pipeline
from psystock.mlflow_io.lifecycle import LOG_CONTEXT, active_run, end_unseen_runs, run_step
from psystock.models import choose_families
from psystock.pipeline import MainArgs as Args
from psystock.tickers import check_ticker


def check(args: Args) -> None:
    """Refuse bad parameters before any step runs."""
    check_ticker(args.ticker)
    pipeline.check_settings(args)
    pipeline.parse_rerun(args.rerun, choose_families(args.families))


def main(args: Args) -> None:
    check(args)
    os.environ[LOG_CONTEXT] = args.ticker  # every step's log lines name the ticker
    pipeline.keep_launches_cold(args.launcher)
    run = active_run()
    end_unseen_runs(run.info.experiment_id)  # a killed pipeline's, before the cache looks for finished runs
    families = choose_families(args.families)
    runner = pipeline.StepRunner(
        run.info.experiment_id,
        run.info.run_id,
        env_manager=args.env_manager,
        launcher=args.launcher,
        use_cache=args.use_cache.lower() == "true",
        rerun=pipeline.parse_rerun(args.rerun, families),
        max_parallel=args.max_parallel or os.cpu_count() or 1,
        families=families,
    )
    try:
        steps = pipeline.run_pipeline(args, runner)
    finally:
        print(f"pipeline {run.info.run_id}:\n{runner.summary()}", flush=True)
        mlflow.set_tags(
            {names.TAG_STEP_RUNS: json.dumps(runner.run_ids()), names.TAG_CACHED_STEPS: ",".join(runner.cached())}
        )
    pipeline.record(args, steps)


if __name__ == "__main__":
    run_step(Args, main)
