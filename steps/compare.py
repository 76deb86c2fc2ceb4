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
import pandas as pd

from psystock import PsystockError, leaderboard, names, plots
from psystock.entry_points import StepArgs
from psystock.mlflow_io import lineage
from psystock.mlflow_io.lifecycle import active_run, run_step
from psystock.scores import DEFAULT_METRIC, score
from psystock.validation import Split, common_split, ranked_by

log = logging.getLogger("psystock.compare")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "compare"
    training_runs: str = ""
    experiment: str = ""
    metric: str = DEFAULT_METRIC


def compare(args: Args) -> None:
    score(args.metric)
    run_ids = [names.run_id_of(r.strip()) for r in args.training_runs.split(",") if r.strip()]
    if run_ids and args.experiment:
        raise PsystockError("give training_runs or experiment, not both")
    runs = lineage.candidate_runs(run_ids, _experiment_id(args.experiment))
    if not runs:
        raise PsystockError("no finished training runs to compare")
    by = ranked_by(common_split({r.data.params.get("split", Split.CHRONOLOGICAL.value) for r in runs}), args.metric)
    rows = pd.DataFrame(
        {
            "family": r.data.tags.get(names.TAG_FAMILY, "?"),
            "run_name": r.info.run_name,
            "run_id": r.info.run_id,
            **r.data.metrics,
        }
        for r in runs
    )
    board = leaderboard.rank(rows, by)
    board = board[leaderboard.board_columns(board, args.metric, by)]
    print(leaderboard.to_markdown(board[[*leaderboard.COLUMNS, by]]), flush=True)

    mlflow.log_text(board.to_csv(index=False), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_FILE))
    mlflow.log_text(leaderboard.to_markdown(board), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_MARKDOWN))
    mlflow.log_figure(
        plots.leaderboard_figure(board, by), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_CHART)
    )
    winner, baseline, beats = leaderboard.winners(board, by)
    mlflow.log_metric(names.best_metric(by), float(winner[by]))
    mlflow.set_tags(
        {
            names.TAG_WINNER_FAMILY: winner["family"],
            names.TAG_WINNER_RUN: winner["run_id"],
            names.TAG_BEATS_BASELINES: str(beats).lower(),
            names.TAG_RANKED_BY: by,
        }
    )
    log.info("best model: %s (run %s, %s=%.4f)", winner["family"], winner["run_id"], by, winner[by])
    if baseline is not None:
        mlflow.log_metric(names.best_baseline_metric(by), float(baseline[by]))
        mlflow.set_tags(
            {names.TAG_BEST_BASELINE: baseline["run_name"], names.TAG_BEST_BASELINE_RUN: baseline["run_id"]}
        )
        if not beats:
            log.warning(
                "no model beats the best baseline on %s: %s %.4f vs %s %.4f",
                by,
                baseline["run_name"],
                baseline[by],
                winner["family"],
                winner[by],
            )


def _experiment_id(name: str) -> str:
    if not name:
        return active_run().info.experiment_id
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        raise PsystockError(f"experiment {name!r} not found on {mlflow.get_tracking_uri()}")
    return experiment.experiment_id


if __name__ == "__main__":
    run_step(Args, compare)
