"""Rank models and baselines by a metric: pure pandas, no MLflow."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from psystock import PsystockError, names
from psystock.names import BASELINE_FAMILY as BASELINE
from psystock.names import PRIMARY_METRIC
from psystock.scores import SCORES

COLUMNS = ("rank", "family", "run_name", "run_id")
# Columns that are facts or spreads rather than scores: never "best".
_NOT_SCORES = re.compile(r"(up_rate|_std|_ci_low|_ci_high|_exposure|_turnover|block_length)$|^buy_and_hold_")
_BACKTEST_BETTER_HIGHER = re.compile(r"^backtest_(total_return|cagr|sharpe|max_drawdown|hit_rate)$")


def board_columns(board: pd.DataFrame, metric: str, by: str) -> list[str]:
    """The leaderboard's columns: who, the ranking score and its spread, the holdout score and its
    interval, the backtest against buy-and-hold, then every other holdout score."""
    first = [
        by,
        names.cv_std(metric),
        names.cv_mean(metric),
        names.test_metric(metric),
        names.ci_low(metric),
        names.ci_high(metric),
        "backtest_sharpe",
        names.BACKTEST_SHARPE_CI_LOW,
        names.BACKTEST_SHARPE_CI_HIGH,
        "backtest_total_return",
        "buy_and_hold_sharpe",
        "buy_and_hold_total_return",
    ]
    rest = sorted(c for c in board.columns if c.startswith("test_") or c == PRIMARY_METRIC)
    ordered = list(dict.fromkeys(c for c in [*first, *rest] if c in board.columns))
    return [*COLUMNS, *ordered]


def direction(column: str) -> int:
    """1 if a larger value of ``column`` is better, -1 if a smaller one, 0 if it is not a score."""
    if column in COLUMNS or _NOT_SCORES.search(column):
        return 0
    if _BACKTEST_BETTER_HIGHER.match(column):
        return 1  # a drawdown is negative: closer to 0 is better
    if column == PRIMARY_METRIC:
        return 1
    for name, score in SCORES.items():
        if re.fullmatch(rf"(cv_{name}_mean|test_{name}|cv_{name}_fold_\d+)", column):
            return 1 if score.greater_is_better else -1
    return 0


def rank(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """Rows (one per run, a column per metric) ranked by the column ``by``, best first.

    Ties keep their input order. Rows without the metric are left out.
    """
    if rows.empty:
        raise PsystockError("no finished training runs to compare")
    if by not in rows.columns or rows[by].isna().all():
        raise PsystockError(f"no training run has the metric {by!r}")
    ranked = rows.dropna(subset=[by]).sort_values(by, ascending=direction(by) < 0, kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked


def build(rows: pd.DataFrame, metric: str, by: str) -> pd.DataFrame:
    """The leaderboard of ``rows`` (one per run): ranked by ``by``, in :func:`board_columns` order."""
    board = rank(rows, by)
    return board[board_columns(board, metric, by)]


def winners(board: pd.DataFrame, by: str) -> tuple[pd.Series, pd.Series | None, bool]:
    """The best model, the best baseline (None without baselines) and whether the model does
    strictly better on ``by``."""
    models = board[board["family"] != BASELINE]
    if models.empty:
        raise PsystockError("only baselines to compare: no model run among the candidates")
    model = models.iloc[0]
    baselines = board[board["family"] == BASELINE]
    if baselines.empty:
        return model, None, True
    baseline = baselines.iloc[0]
    better = model[by] < baseline[by] if direction(by) < 0 else model[by] > baseline[by]
    return model, baseline, bool(better)


@dataclass(frozen=True)
class Choice:
    """What a leaderboard names: its best model, its best baseline (None without baselines), and
    whether the model does strictly better on ``by``."""

    by: str
    model: pd.Series
    baseline: pd.Series | None
    beats: bool

    def metrics(self) -> dict[str, float]:
        found = {names.best_metric(self.by): float(self.model[self.by])}
        if self.baseline is not None:
            found[names.best_baseline_metric(self.by)] = float(self.baseline[self.by])
        return found

    def tags(self) -> dict[str, str]:
        found = {
            names.TAG_WINNER_FAMILY: str(self.model["family"]),
            names.TAG_WINNER_RUN: str(self.model["run_id"]),
            names.TAG_BEATS_BASELINES: str(self.beats).lower(),
            names.TAG_RANKED_BY: self.by,
        }
        if self.baseline is not None:
            found[names.TAG_BEST_BASELINE] = str(self.baseline["run_name"])
            found[names.TAG_BEST_BASELINE_RUN] = str(self.baseline["run_id"])
        return found

    def __str__(self) -> str:
        model = self.model
        line = f"best model: {model['family']} (run {model['run_id']}, {self.by}={model[self.by]:.4f})"
        if self.baseline is None or self.beats:
            return line
        baseline = self.baseline
        return (
            f"{line}; no model beats the best baseline on {self.by}: "
            f"{baseline['run_name']} {baseline[self.by]:.4f} vs {model['family']} {model[self.by]:.4f}"
        )


def choose(board: pd.DataFrame, by: str) -> Choice:
    """The :class:`Choice` a ranked board makes."""
    return Choice(by, *winners(board, by))


def to_markdown(board: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table, numbers to four decimals."""
    return str(board.to_markdown(index=False, floatfmt=".4f")) + "\n"


def baseline_runs(board: pd.DataFrame) -> dict[str, str]:
    """Every baseline on a leaderboard: run name -> run id."""
    rows = board[board["family"] == BASELINE]
    return dict(zip(rows["run_name"], rows["run_id"], strict=True))
