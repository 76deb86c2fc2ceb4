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

import json
import os

import mlflow

from psystock import PsystockError, pipeline
from psystock.mlflow_io import names
from psystock.mlflow_io.lifecycle import active_run, run_step
from psystock.pipeline import MainArgs as Args
from psystock.scores import score
from psystock.validation import (
    check_backtest,
    check_bootstrap,
    check_cv_folds,
    check_min_improvement,
    check_search,
    check_split,
    check_window,
)


def check(args: Args) -> None:
    """Refuse bad parameters before any step runs."""
    check_split(args.split, args.test_size)
    check_window(args.window)
    score(args.metric)
    check_bootstrap(args.confidence, args.block_length)
    check_backtest(args.strategy, args.cost_bps)
    check_search(args.max_evals, args.early_stop, args.tune_timeout, args.tune_parallelism, args.spark_master)
    check_cv_folds(args.cv_folds)
    check_min_improvement(args.min_improvement)
    if args.use_cache.lower() not in ("true", "false"):
        raise PsystockError(f"use_cache must be true or false, got {args.use_cache!r}")
    if args.max_parallel < 0:
        raise PsystockError(f"max_parallel must be 0 (one per CPU) or more, got {args.max_parallel}")


def main(args: Args) -> None:
    check(args)
    run = active_run()
    runner = pipeline.StepRunner(
        run.info.experiment_id,
        run.info.run_id,
        env_manager=args.env_manager,
        use_cache=args.use_cache.lower() == "true",
        rerun=pipeline.parse_rerun(args.rerun),
        max_parallel=args.max_parallel or os.cpu_count() or 1,
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
