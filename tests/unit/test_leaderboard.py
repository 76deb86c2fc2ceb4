import pandas as pd
import pytest

from psystock import PsystockError, names
from psystock.leaderboard import COLUMNS, rank, to_markdown, winners


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


def with_baselines():
    extra = pd.DataFrame(
        {
            "family": ["baseline", "baseline"],
            "run_name": ["baseline_always_up", "baseline_persistence"],
            "run_id": ["4", "5"],
            "f1_experiment_score": [0.71, 0.50],
            "accuracy": [0.55, 0.5],
        }
    )
    return pd.concat([rows(), extra], ignore_index=True)


def test_winner_is_the_best_model_even_when_a_baseline_tops_the_board():
    board = rank(with_baselines(), "f1_experiment_score")
    assert board.iloc[0]["run_name"] == "baseline_always_up"
    model, baseline, beats = winners(board, "f1_experiment_score")
    assert baseline is not None
    assert (model["family"], baseline["run_name"], beats) == ("logreg", "baseline_always_up", False)


def test_a_model_above_every_baseline_beats_them():
    model, baseline, beats = winners(rank(with_baselines(), "accuracy"), "accuracy")
    assert baseline is not None
    assert (model["family"], baseline["run_name"], beats) == ("xgboost", "baseline_always_up", True)


def test_lower_is_better_metrics_rank_ascending():
    frame = rows().assign(test_log_loss=[0.70, 0.69, 0.71])
    assert rank(frame, "test_log_loss")["family"].tolist() == ["logreg", "keras", "xgboost"]


def test_only_baselines_is_an_error():
    board = rank(with_baselines().query("family == 'baseline'"), "f1_experiment_score")
    with pytest.raises(PsystockError, match="only baselines"):
        winners(board, "f1_experiment_score")


def test_direction_knows_scores_spreads_and_facts():
    from psystock.leaderboard import direction

    assert [
        direction(c)
        for c in (
            "cv_mcc_mean",
            "test_mcc",
            "test_log_loss",
            "cv_log_loss_mean",
            "backtest_max_drawdown",
            "f1_experiment_score",
        )
    ] == [1, 1, -1, -1, 1, 1]
    assert [
        direction(c)
        for c in ("cv_mcc_std", "test_mcc_ci_low", "test_up_rate", "backtest_exposure", "buy_and_hold_sharpe", "run_id")
    ] == [0, 0, 0, 0, 0, 0]


def test_ranking_by_cross_validation_ignores_the_holdout():
    frame = rows().assign(cv_mcc_mean=[0.05, 0.02, 0.09], test_mcc=[0.30, 0.40, -0.10])
    assert rank(frame, "cv_mcc_mean")["family"].tolist() == ["xgboost", "keras", "logreg"]


def test_choices_are_made_on_the_development_period_except_under_the_reference_split():
    from psystock.validation import common_split, ranked_by

    assert ranked_by("chronological", "mcc") == "cv_mcc_mean"
    assert ranked_by("random", "f1") == "test_f1"
    assert common_split({"random"}) == "random" and common_split(set()) == "chronological"
    with pytest.raises(PsystockError, match=r"split differently \(chronological, random\)"):
        common_split({"random", "chronological"})


def test_the_board_leads_with_the_ranking_score_its_spread_and_the_holdout_interval():
    from psystock.leaderboard import board_columns

    given = "rank family run_name run_id test_f1 cv_mcc_std cv_mcc_mean test_mcc test_mcc_ci_low backtest_sharpe rows"
    frame = pd.DataFrame(columns=given.split())
    assert board_columns(frame, "mcc", "cv_mcc_mean") == [
        *("rank", "family", "run_name", "run_id", "cv_mcc_mean", "cv_mcc_std", "test_mcc", "test_mcc_ci_low"),
        *("backtest_sharpe", "test_f1"),
    ]


def test_a_board_is_its_rows_ranked_in_the_boards_column_order():
    from psystock.leaderboard import board_columns, build

    frame = rows().assign(cv_mcc_mean=[0.05, 0.02, 0.09], cv_mcc_std=[0.01, 0.02, 0.03], seconds=[1, 2, 3])
    board = build(frame, "mcc", "cv_mcc_mean")
    assert board["family"].tolist() == ["xgboost", "keras", "logreg"]
    assert list(board.columns) == board_columns(rank(frame, "cv_mcc_mean"), "mcc", "cv_mcc_mean")
    assert "seconds" not in board.columns and list(board.columns[:6]) == [*COLUMNS, "cv_mcc_mean", "cv_mcc_std"]


def test_the_choice_names_the_best_model_and_baseline_as_compare_logs_them():
    from psystock.leaderboard import choose

    choice = choose(rank(with_baselines(), "f1_experiment_score"), "f1_experiment_score")
    assert choice.metrics() == {"best_f1_experiment_score": 0.66, "best_baseline_f1_experiment_score": 0.71}
    assert choice.tags() == {
        names.TAG_WINNER_FAMILY: "logreg",
        names.TAG_WINNER_RUN: "2",
        names.TAG_BEATS_BASELINES: "false",
        names.TAG_RANKED_BY: "f1_experiment_score",
        names.TAG_BEST_BASELINE: "baseline_always_up",
        names.TAG_BEST_BASELINE_RUN: "4",
    }
    assert str(choice) == (
        "best model: logreg (run 2, f1_experiment_score=0.6600); no model beats the best baseline on "
        "f1_experiment_score: baseline_always_up 0.7100 vs logreg 0.6600"
    )


def test_a_choice_without_baselines_names_the_model_alone():
    from psystock.leaderboard import choose

    choice = choose(rank(rows(), "accuracy"), "accuracy")
    assert choice.beats and choice.baseline is None
    assert choice.metrics() == {"best_accuracy": 0.7}
    assert names.TAG_BEST_BASELINE not in choice.tags()
    assert str(choice) == "best model: xgboost (run 3, accuracy=0.7000)"


def test_the_baselines_of_a_board_by_run_name():
    from psystock.leaderboard import baseline_runs

    assert baseline_runs(rank(with_baselines(), "accuracy")) == {"baseline_always_up": "4", "baseline_persistence": "5"}
    assert baseline_runs(rank(rows(), "accuracy")) == {}
