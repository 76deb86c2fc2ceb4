"""The leaderboard on MLflow: the candidate runs it ranks, and its artifacts."""

from __future__ import annotations

from collections.abc import Iterable

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from psystock import PsystockError, leaderboard, names, plots
from psystock.mlflow_io.lifecycle import FINISHED, active_run, get_run
from psystock.validation import Split


def candidate_runs(run_ids: Iterable[str] = (), experiment_id: str | None = None) -> list[Run]:
    """Finished leaderboard candidates (models and baselines): the given ones, or all of an experiment's."""
    chosen = [r for r in run_ids if r]
    if chosen:
        runs = [get_run(r) for r in chosen]
        unfinished = [r.info.run_id for r in runs if r.info.status != FINISHED]
        if unfinished:
            raise PsystockError(f"runs to compare are not FINISHED: {', '.join(unfinished)}")
        return runs
    if experiment_id is None:
        raise PsystockError("no runs to compare: name them, or an experiment")
    found: list[Run] = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{names.TAG_ROLE}` = '{names.CANDIDATE}' AND attributes.status = '{FINISHED}'",
        max_results=10_000,
    )
    return found


def chosen_candidates(training_runs: str, experiment: str) -> list[Run]:
    """``compare``'s candidates: the runs of the comma list ``training_runs`` (ids or ``runs:/``
    URIs), or every finished candidate of ``experiment`` (by name; empty: the active run's)."""
    run_ids = [names.run_id_of(r.strip()) for r in training_runs.split(",") if r.strip()]
    if run_ids and experiment:
        raise PsystockError("give training_runs or experiment, not both")
    runs = candidate_runs(run_ids, experiment_id(experiment))
    if not runs:
        raise PsystockError("no finished training runs to compare")
    return runs


def experiment_id(name: str) -> str:
    """The id of the experiment called ``name``; empty: the active run's experiment."""
    if not name:
        return active_run().info.experiment_id
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        raise PsystockError(f"experiment {name!r} not found on {mlflow.get_tracking_uri()}")
    return str(experiment.experiment_id)


def board_rows(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per candidate run, for :func:`psystock.leaderboard.build`: who it is and its metrics."""
    return pd.DataFrame(
        {
            "family": r.data.tags.get(names.TAG_FAMILY, "?"),
            "run_name": r.info.run_name,
            "run_id": r.info.run_id,
            **r.data.metrics,
        }
        for r in runs
    )


def splits(runs: Iterable[Run]) -> set[str]:
    """The splits the runs were made with (runs from before the parameter: chronological)."""
    return {r.data.params.get("split", Split.CHRONOLOGICAL.value) for r in runs}


def log_leaderboard(board: pd.DataFrame, by: str) -> None:
    """The leaderboard as ``leaderboard/leaderboard.{csv,md,png}`` of the active run."""
    mlflow.log_text(board.to_csv(index=False), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_FILE))
    mlflow.log_text(leaderboard.to_markdown(board), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_MARKDOWN))
    mlflow.log_figure(
        plots.leaderboard_figure(board, by), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_CHART)
    )
