"""Rank training runs by a metric: pure pandas, no MLflow."""

from __future__ import annotations

import pandas as pd

from psystock import PsystockError

COLUMNS = ("rank", "family", "run_name", "run_id")
# Test-split metrics every model run logs (autologged training metrics are left out).
TEST_METRICS = ("f1_experiment_score", "test_accuracy", "test_precision", "test_recall", "test_roc_auc")


def rank(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows (one per run, a column per metric) ranked by ``metric``, best first.

    Ties keep their input order. Rows without the metric are left out.
    """
    if rows.empty:
        raise PsystockError("no finished training runs to compare")
    if metric not in rows.columns or rows[metric].isna().all():
        raise PsystockError(f"no training run has the metric {metric!r}")
    ranked = rows.dropna(subset=[metric]).sort_values(metric, ascending=False, kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked


def to_markdown(board: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table, numbers to four decimals."""
    return board.to_markdown(index=False, floatfmt=".4f") + "\n"
