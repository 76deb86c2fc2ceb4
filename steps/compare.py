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

import io
import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from psystock import PsystockError, leaderboard, plots, report, tracking
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
        board.to_csv(Path(tmp, tracking.LEADERBOARD_FILE), index=False)
        Path(tmp, "leaderboard.md").write_text(leaderboard.to_markdown(board))
        mlflow.log_artifacts(tmp, tracking.LEADERBOARD_DIR)
    chart = plots.leaderboard_figure(board, args.metric)
    mlflow.log_figure(chart, f"{tracking.LEADERBOARD_DIR}/leaderboard.png")
    _log_report(board, args.metric, {r.info.run_id: r for r in runs}, chart)
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


def _log_report(board: pd.DataFrame, metric: str, runs: dict, chart) -> None:
    """report/report.html (self-contained) and report/report.md."""
    models = [runs[rid] for rid, family in zip(board["run_id"], board["family"]) if family != tracking.BASELINE_FAMILY]
    reference = models[0] if models else runs[board["run_id"].iloc[0]]
    dataset, split = tracking.dataset_facts(reference), tracking.split_facts(reference)
    images = {}
    for run in models:
        found = {title: tracking.artifact_bytes(run.info.run_id, f"{tracking.PLOTS_DIR}/{name}.png")
                 for title, name in (("confusion matrix", "confusion_matrix"), ("ROC curve", "roc_curve"))}
        images[run.info.run_name] = {title: png for title, png in found.items() if png}
    buffer = io.BytesIO()
    chart.savefig(buffer, format="png")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "report.html").write_text(report.render_html(board, metric, dataset, split, buffer.getvalue(), images))
        Path(tmp, "report.md").write_text(report.render_markdown(board, metric, dataset, split))
        mlflow.log_artifacts(tmp, tracking.REPORT_DIR)


def _experiment_id(name: str) -> str:
    if not name:
        return mlflow.active_run().info.experiment_id
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        raise PsystockError(f"experiment {name!r} not found on {mlflow.get_tracking_uri()}")
    return experiment.experiment_id


if __name__ == "__main__":
    run_step("compare", compare)
