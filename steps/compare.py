"""compare: rank training runs by a metric and name the winning family.

Reads: ``training_runs`` (comma-separated run ids or ``runs:/`` URIs of model
and baseline runs; empty = every finished candidate run of ``experiment``,
default: this run's experiment).
Writes: ``leaderboard/leaderboard.{csv,md,png}`` (models and baselines),
``report/report.html`` (self-contained: leaderboard with the best value per
column marked, bar chart, each model's confusion matrix and ROC curve,
dataset and split) and ``report/report.md``, tags
``psystock.winner_family`` / ``psystock.winner_run_id`` (the best *model*),
``psystock.best_baseline``, ``psystock.beats_baselines``, metrics
``best_<metric>`` and ``best_baseline_<metric>``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Run

from psystock import PsystockError, leaderboard, plots, report
from psystock.entry_points import StepArgs
from psystock.mlflow_io import lineage, names
from psystock.mlflow_io.inputs import artifact_bytes
from psystock.mlflow_io.lifecycle import active_run, run_step

log = logging.getLogger("psystock.compare")

# The plots of each model that the report shows.
REPORT_PLOTS = {"confusion matrix": "confusion_matrix", "ROC curve": "roc_curve"}


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "compare"
    training_runs: str = ""
    experiment: str = ""
    metric: str = names.PRIMARY_METRIC


def compare(args: Args) -> None:
    run_ids = [names.run_id_of(r.strip()) for r in args.training_runs.split(",") if r.strip()]
    if run_ids and args.experiment:
        raise PsystockError("give training_runs or experiment, not both")
    runs = lineage.candidate_runs(run_ids, _experiment_id(args.experiment))
    rows = pd.DataFrame(
        {
            "family": r.data.tags.get(names.TAG_FAMILY, "?"),
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

    mlflow.log_text(board.to_csv(index=False), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_FILE))
    mlflow.log_text(leaderboard.to_markdown(board), names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_MARKDOWN))
    chart = plots.leaderboard_figure(board, args.metric)
    mlflow.log_figure(chart, names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_CHART))
    _log_report(board, args.metric, {r.info.run_id: r for r in runs}, chart)
    winner, baseline, beats = leaderboard.winners(board, args.metric)
    mlflow.log_metric(names.best_metric(args.metric), float(winner[args.metric]))
    mlflow.set_tags(
        {
            names.TAG_WINNER_FAMILY: winner["family"],
            names.TAG_WINNER_RUN: winner["run_id"],
            names.TAG_BEATS_BASELINES: str(beats).lower(),
        }
    )
    log.info("best model: %s (run %s, %s=%.4f)", winner["family"], winner["run_id"], args.metric, winner[args.metric])
    if baseline is not None:
        mlflow.log_metric(names.best_baseline_metric(args.metric), float(baseline[args.metric]))
        mlflow.set_tag(names.TAG_BEST_BASELINE, baseline["run_name"])
        if not beats:
            log.warning(
                "no model beats the best baseline: %s %s=%.4f vs %s %.4f",
                baseline["run_name"],
                args.metric,
                baseline[args.metric],
                winner["family"],
                winner[args.metric],
            )


def _log_report(board: pd.DataFrame, metric: str, runs: dict[str, Run], chart: Figure) -> None:
    """report/report.html (self-contained) and report/report.md."""
    models = [
        runs[rid]
        for rid, family in zip(board["run_id"], board["family"], strict=True)
        if family != leaderboard.BASELINE
    ]
    reference = models[0] if models else runs[board["run_id"].iloc[0]]
    dataset, split = lineage.dataset_facts(reference), lineage.split_facts(reference)
    images = {}
    for run in models:
        found = {title: artifact_bytes(run.info.run_id, names.plot(name)) for title, name in REPORT_PLOTS.items()}
        images[run.info.run_name] = {title: png for title, png in found.items() if png}
    buffer = io.BytesIO()
    chart.savefig(buffer, format="png")
    page = report.render_html(board, metric, dataset, split, buffer.getvalue(), images)
    mlflow.log_text(page, names.artifact(names.REPORT_DIR, names.REPORT_HTML))
    mlflow.log_text(
        report.render_markdown(board, metric, dataset, split), names.artifact(names.REPORT_DIR, names.REPORT_MARKDOWN)
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
