"""compare: rank training runs by a metric and name the winning family.

Reads: ``training_runs`` (comma-separated run ids or ``runs:/`` URIs of model
and baseline runs; empty = every finished candidate run of ``experiment``,
default: this run's experiment).
Writes: ``leaderboard/leaderboard.{csv,md,png}`` (models and baselines), tags
``psystock.winner_family`` / ``psystock.winner_run_id`` (the best *model*),
``psystock.best_baseline``, ``psystock.beats_baselines``, metrics
``best_<metric>`` and ``best_baseline_<metric>``.
"""

import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from psystock import PsystockError, leaderboard, plots, tracking
from psystock.stepkit import run_step

log = logging.getLogger("psystock.compare")


def compare(args) -> None:
    run_ids = [tracking.run_id_from_uri(r) or r for r in args.training_runs.split(",") if r.strip()]
    experiment_id = _experiment_id(args.experiment)
    runs = tracking.candidate_runs(run_ids, experiment_id)
    rows = pd.DataFrame(
        {
            "family": r.data.tags.get(tracking.TAG_FAMILY, "?"),
            "run_name": r.info.run_name,
            "run_id": r.info.run_id,
            **r.data.metrics,
        }
        for r in runs
    )
    board = leaderboard.rank(rows, args.metric)
    metric_columns = [c for c in board.columns if c == args.metric or c in leaderboard.TEST_METRICS]
    board = board[[*leaderboard.COLUMNS, *sorted(metric_columns, key=lambda c: (c != args.metric, c))]]
    print(leaderboard.to_markdown(board[[*leaderboard.COLUMNS, args.metric]]), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        board.to_csv(Path(tmp, "leaderboard.csv"), index=False)
        Path(tmp, "leaderboard.md").write_text(leaderboard.to_markdown(board))
        mlflow.log_artifacts(tmp, tracking.LEADERBOARD_DIR)
    mlflow.log_figure(plots.leaderboard_figure(board, args.metric), f"{tracking.LEADERBOARD_DIR}/leaderboard.png")
    winner, baseline, beats = leaderboard.winners(board, args.metric)
    mlflow.log_metric(f"best_{args.metric}", float(winner[args.metric]))
    mlflow.set_tags({tracking.TAG_WINNER_FAMILY: winner["family"], tracking.TAG_WINNER_RUN: winner["run_id"],
                     tracking.TAG_BEATS_BASELINES: str(beats).lower()})
    log.info("best model: %s (run %s, %s=%.4f)", winner["family"], winner["run_id"], args.metric, winner[args.metric])
    if baseline is not None:
        mlflow.log_metric(f"best_baseline_{args.metric}", float(baseline[args.metric]))
        mlflow.set_tag(tracking.TAG_BEST_BASELINE, baseline["run_name"])
        if not beats:
            log.warning("no model beats the best baseline: %s %s=%.4f vs %s %.4f", baseline["run_name"],
                        args.metric, baseline[args.metric], winner["family"], winner[args.metric])


def _experiment_id(name: str) -> str:
    if not name:
        return mlflow.active_run().info.experiment_id
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        raise PsystockError(f"experiment {name!r} not found on {mlflow.get_tracking_uri()}")
    return experiment.experiment_id


if __name__ == "__main__":
    run_step("compare", compare)
