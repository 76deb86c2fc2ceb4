"""compare: rank models and baselines by the selection metric; name the winning family and baseline.

Reads: ``training_runs`` (comma-separated run ids or ``runs:/`` URIs of model
and baseline runs; empty = every finished candidate run of ``experiment``,
default: this run's experiment) and ``metric``. With ``split=chronological``
(the runs' own) it ranks by the cross-validation on the development period,
``cv_<metric>_mean``: the holdout plays no part in the choice. With
``split=random`` (the reference protocol) it ranks by ``test_<metric>``.
Writes: ``leaderboard/leaderboard.{csv,md,png}`` (models and baselines: the
ranking score, its spread over the folds, the holdout score with its
interval, the backtest), tags ``psystock.winner_family`` /
``psystock.winner_run_id`` (the best *model*), ``psystock.best_baseline`` /
``psystock.best_baseline_run_id``, ``psystock.beats_baselines``,
``psystock.ranked_by``; metrics ``best_<ranked by>`` and
``best_baseline_<ranked by>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow

from psystock import leaderboard
from psystock.entry_points import StepArgs
from psystock.mlflow_io import board
from psystock.mlflow_io.lifecycle import run_step
from psystock.scores import DEFAULT_METRIC, score
from psystock.validation import common_split, ranked_by

log = logging.getLogger("psystock.compare")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "compare"
    training_runs: str = ""
    experiment: str = ""
    metric: str = DEFAULT_METRIC


def compare(args: Args) -> None:
    score(args.metric)
    runs = board.chosen_candidates(args.training_runs, args.experiment)
    by = ranked_by(common_split(board.splits(runs)), args.metric)
    ranked = leaderboard.build(board.board_rows(runs), args.metric, by)
    print(leaderboard.to_markdown(ranked[[*leaderboard.COLUMNS, by]]), flush=True)
    board.log_leaderboard(ranked, by)
    choice = leaderboard.choose(ranked, by)
    mlflow.log_metrics(choice.metrics())
    mlflow.set_tags(choice.tags())
    (log.info if choice.beats else log.warning)("%s", choice)


if __name__ == "__main__":
    run_step(Args, compare)
