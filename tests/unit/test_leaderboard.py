import pandas as pd
import pytest

from psystock import PsystockError
from psystock.leaderboard import rank, to_markdown


def rows():
    return pd.DataFrame(
        {
            "family": ["keras", "logreg", "xgboost"],
            "run_name": ["k", "l", "x"],
            "run_id": ["1", "2", "3"],
            "f1_experiment_score": [0.55, 0.66, 0.60],
            "accuracy": [0.6, 0.5, 0.7],
        }
    )


def test_rank_orders_by_metric_best_first():
    board = rank(rows(), "f1_experiment_score")
    assert board["family"].tolist() == ["logreg", "xgboost", "keras"]
    assert board["rank"].tolist() == [1, 2, 3]


def test_rank_uses_the_metric_it_is_given():
    assert rank(rows(), "accuracy")["family"].tolist() == ["xgboost", "keras", "logreg"]


def test_rank_rejects_unknown_metric():
    with pytest.raises(PsystockError, match="no training run has the metric 'auc'"):
        rank(rows(), "auc")


def test_rank_rejects_no_runs():
    with pytest.raises(PsystockError, match="no finished training runs"):
        rank(pd.DataFrame(), "f1_experiment_score")


def test_markdown_has_a_row_per_run():
    text = to_markdown(rank(rows(), "f1_experiment_score"))
    assert text.count("\n") == 2 + 3
    assert "| logreg" in text and "0.6600" in text
