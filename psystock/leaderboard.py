"""Rank training runs by a metric: pure pandas, no MLflow."""

from __future__ import annotations

import pandas as pd

from psystock import PsystockError
from psystock.baselines import FAMILY as BASELINE

COLUMNS = ("rank", "family", "run_name", "run_id")
# Metrics where a smaller value is better; every other one is better larger.
LOWER_IS_BETTER = ("test_log_loss",)
# Facts about the test split rather than scores: never "best".
NOT_SCORES = ("test_up_rate",)
# Test-split metrics every model run logs (autologged training metrics are left out).
TEST_METRICS = (
    "f1_experiment_score",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_precision",
    "test_recall",
    "test_mcc",
    "test_roc_auc",
    "test_log_loss",
    "test_up_rate",
)


def rank(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows (one per run, a column per metric) ranked by ``metric``, best first.

    Ties keep their input order. Rows without the metric are left out.
    """
    ascending = metric in LOWER_IS_BETTER
    if rows.empty:
        raise PsystockError("no finished training runs to compare")
    if metric not in rows.columns or rows[metric].isna().all():
        raise PsystockError(f"no training run has the metric {metric!r}")
    ranked = rows.dropna(subset=[metric]).sort_values(metric, ascending=ascending, kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked


def winners(board: pd.DataFrame, metric: str) -> tuple[pd.Series, pd.Series | None, bool]:
    """The best model, the best baseline (None without baselines) and whether
    the model does strictly better on ``metric``."""
    models = board[board["family"] != BASELINE]
    if models.empty:
        raise PsystockError("only baselines to compare: no model run among the candidates")
    model = models.iloc[0]
    baselines = board[board["family"] == BASELINE]
    if baselines.empty:
        return model, None, True
    baseline = baselines.iloc[0]
    better = model[metric] < baseline[metric] if metric in LOWER_IS_BETTER else model[metric] > baseline[metric]
    return model, baseline, bool(better)


def to_markdown(board: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table, numbers to four decimals."""
    return str(board.to_markdown(index=False, floatfmt=".4f")) + "\n"
