import dataclasses
import re

import numpy as np
import pandas as pd

from psystock import names
from psystock.report import (
    BACKTEST_COLUMNS,
    TUNED,
    Candidate,
    Findings,
    Gate,
    backtest_rows,
    best_rows,
    comparisons,
    gate_of,
    leaderboard_rows,
    pipeline_summary,
    render_html,
    render_markdown,
    verdict,
)

PNG = b"\\x89PNG\\r\\n\\x1a\\nfake"


def board():
    return pd.DataFrame(
        {
            "rank": [1, 2, "", 3],
            "family": ["logreg", "baseline", "tuned", "keras"],
            "run_name": [
                "logistic_regression_model_baseline",
                "baseline_persistence",
                "tuned logreg",
                "keras_model_baseline",
            ],
            "run_id": ["a", "b", "t", "c"],
            "cv_mcc_mean": [0.06, 0.04, 0.07, 0.01],
            "cv_mcc_std": [0.02, 0.05, 0.01, 0.03],
            "test_mcc": [0.03, 0.05, 0.02, 0.04],
            "test_log_loss": [0.69, float("nan"), 0.68, 0.70],
        }
    )


REFUSED = Gate(
    "mcc", "refused", "…", "tuned logreg", "baseline_always_up", 0.031, 0.0, 0.031, -0.045, 0.104, 0.21, 0.95
)
REGISTERED = Gate(
    "mcc",
    "registered",
    "…",
    "tuned logreg",
    "baseline_persistence",
    0.41,
    0.0,
    0.41,
    0.33,
    0.49,
    0.0005,
    0.95,
    "models:/psystock-X/2",
)


def findings(gate=REFUSED):
    backtest = pd.DataFrame(
        {
            "strategy": ["tuned logreg", "buy and hold"],
            "sharpe": [0.4, 1.1],
            "max_drawdown": [-0.2, -0.5],
            "exposure": [0.6, 1.0],
        }
    )
    return Findings(
        "psystock: BTC-USD 2019-01-01 to 2020-12-31",
        "mcc",
        "cv_mcc_mean",
        "2020-05-09..2020-12-31",
        board(),
        backtest,
        gate,
        {"ticker": "BTC-USD"},
        {"split": "chronological"},
        PNG,
        PNG,
        {"keras_model_baseline": {"ROC curve": PNG}},
    )


def test_the_verdict_says_what_was_found_with_its_numbers():
    assert verdict(REFUSED, "2018-12-08..2020-12-31") == (
        "On the holdout 2018-12-08..2020-12-31 no model beats baseline_always_up: the tuned logreg scores "
        "mcc 0.031 against 0.000, a difference of +0.031 [-0.045, +0.104] (p = 0.210); nothing registered."
    )
    assert verdict(REGISTERED, "a..b") == (
        "On the holdout a..b the tuned logreg beats every baseline; against the closest, baseline_persistence: "
        "mcc 0.410 against 0.000, a difference of +0.410 [+0.330, +0.490] (p = 0.001); registered as "
        "models:/psystock-X/2."
    )


def test_the_verdict_says_whether_the_candidate_replaced_the_champion_it_met_or_waits_as_its_challenger():
    incumbent, challenge = "models:/psystock-X/1", "mcc on the 40 holdout day(s) ...: +0.010"
    waits = dataclasses.replace(REGISTERED, decision="challenger", incumbent=incumbent, challenge=challenge)
    assert verdict(waits, "a..b").endswith(
        "(p = 0.001); but not the champion models:/psystock-X/1, which stays: mcc on the 40 holdout day(s) ...: "
        "+0.010; registered as models:/psystock-X/2, its challenger."
    )
    replaced = dataclasses.replace(REGISTERED, incumbent=incumbent, challenge=challenge)
    assert verdict(replaced, "a..b").endswith(
        "(p = 0.001); it replaces the champion models:/psystock-X/1: mcc on the 40 holdout day(s) ...: +0.010; "
        "registered as models:/psystock-X/2."
    )
    page = render_html(findings(waits))
    assert '<p class="verdict challenger">' in page and "champion met" in page
    assert "models:/psystock-X/2 (challenger)" in page
    gate = gate_of(
        "mcc", {"psystock.incumbent": "models:/psystock-X/1", "psystock.challenge": "why"}, {}, 0.95, "t", []
    )
    assert (gate.incumbent, gate.challenge) == ("models:/psystock-X/1", "why")


def test_best_per_column_respects_direction_and_leaves_spreads_alone():
    assert best_rows(board()) == {"cv_mcc_mean": 2, "test_mcc": 1, "test_log_loss": 2}


def test_html_report_opens_with_the_verdict_and_is_self_contained():
    page = render_html(findings())
    assert "http://" not in page and "https://" not in page  # nothing to fetch: opens offline
    first = re.search(r'<p class="verdict refused">([^<]*)</p>', page)
    assert first and first.group(1).startswith("On the holdout 2020-05-09..2020-12-31 no model beats")
    assert page.index('class="verdict') < page.index("<h2>Leaderboard")
    assert page.count("data:image/png;base64,") == 3  # equity curves, bar chart, one model's ROC
    assert '<tr class="baseline">' in page and '<tr class="tuned">' in page
    assert page.count('<div class="table">') == 2  # wide tables scroll in their own box


def test_markdown_report_bolds_the_best_values():
    text = render_markdown(findings(REGISTERED))
    assert text.splitlines()[2].startswith("On the holdout") and "registered as models:/psystock-X/2" in text
    assert "**0.0700**" in text and "**0.0500**" in text
    assert "**0.0100**" not in text  # a spread is not a score


def compare_board():
    """A compare leaderboard as compare logs it: ranked by cv_mcc_mean, every column."""
    return pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "family": ["logreg", "baseline", "xgboost"],
            "run_name": ["logistic_regression_model_baseline", "baseline_always_up", "xgboost_model_baseline"],
            "run_id": ["a", "b", "x"],
            "cv_mcc_mean": [0.06, 0.04, 0.01],
            "cv_mcc_std": [0.02, 0.0, 0.03],
            "test_mcc": [0.03, 0.0, 0.04],
            "test_mcc_ci_low": [-0.01, 0.0, 0.0],
            "test_mcc_ci_high": [0.07, 0.0, 0.08],
            "backtest_sharpe": [0.5, 1.0, 0.2],
            "test_accuracy": [0.5, 0.52, 0.51],
        }
    )


TUNED_RUN = Candidate("tuned logreg", "t", "logreg", {"cv_mcc_mean": 0.05, "test_mcc": 0.02, "backtest_sharpe": 0.7})


def test_the_reports_board_ranks_the_tuned_model_among_the_candidates_by_the_same_score():
    rows = leaderboard_rows(compare_board(), TUNED_RUN, "mcc", "cv_mcc_mean")
    assert rows["run_name"].tolist() == [
        "logistic_regression_model_baseline",
        "tuned logreg",
        "baseline_always_up",
        "xgboost_model_baseline",
    ]
    assert rows.loc[1, "family"] == TUNED and rows.loc[1, "rank"] == ""
    assert np.isnan(rows.loc[1, "test_mcc_ci_low"])  # what the tuned run did not log stays empty
    assert "test_accuracy" not in rows.columns and list(rows.columns)[-1] == "run_id"


def test_the_backtest_table_is_each_backtested_candidate_then_buy_and_hold():
    metrics = {
        **{f"backtest_{k}": 0.1 for k in BACKTEST_COLUMNS},
        **{f"buy_and_hold_{k}": 0.2 for k in BACKTEST_COLUMNS},
        "backtest_sharpe_ci_low": -0.3,
        "backtest_sharpe_ci_high": 0.9,
    }
    table = backtest_rows(
        [Candidate("tuned logreg", "t", "logreg", metrics), Candidate("no backtest", "n", "keras", {"test_mcc": 0.1})]
    )
    assert table["strategy"].tolist() == ["tuned logreg", "buy and hold"]
    assert table.loc[0, "sharpe"] == 0.1 and table.loc[0, "sharpe_ci_high"] == 0.9
    assert table.loc[1, "turnover"] == 0.2 and pd.isna(table.loc[1, "sharpe_ci_low"])
    assert backtest_rows([Candidate("none", "n", "keras", {})]).empty


def register_metrics():
    weighed = {
        "baseline_always_up": (0.0, 0.03, -0.02, 0.08, 0.2),
        "baseline_persistence": (0.01, 0.05, 0.01, 0.09, 0.01),
    }
    found = {"candidate_mcc": 0.03, "baseline_mcc": 0.0, "improvement": 0.03, "improvement_ci_low": -0.02}
    for name, (score_, value, low, high, p) in weighed.items():
        found |= {
            f"mcc_vs_{name}": score_,
            f"improvement_vs_{name}": value,
            f"improvement_ci_low_vs_{name}": low,
            f"improvement_ci_high_vs_{name}": high,
            f"p_value_vs_{name}": p,
        }
    return found


def test_the_gate_section_reads_the_register_runs_record():
    tags = {names.TAG_DECISION: "refused", names.TAG_REASON: "why", names.TAG_GATE_BASELINE: "baseline_always_up"}
    gate = gate_of(
        "mcc", tags, register_metrics(), 0.95, "tuned logreg", ["baseline_always_up", "baseline_persistence", "other"]
    )
    assert (gate.decision, gate.reason, gate.baseline, gate.registered) == ("refused", "why", "baseline_always_up", "")
    assert (gate.candidate_score, gate.improvement, gate.low, gate.high) == (0.03, 0.03, -0.02, None)
    assert gate.against is not None
    assert gate.against.to_dict("records") == [
        {
            "baseline": "baseline_always_up",
            "mcc": 0.0,
            "difference": 0.03,
            "ci_low": -0.02,
            "ci_high": 0.08,
            "p_value": 0.2,
        },
        {
            "baseline": "baseline_persistence",
            "mcc": 0.01,
            "difference": 0.05,
            "ci_low": 0.01,
            "ci_high": 0.09,
            "p_value": 0.01,
        },
    ]  # a baseline the gate did not weigh has no row
    assert comparisons({}, ["baseline_always_up"], "mcc") is None
    assert gate_of("mcc", {}, {}, 0.95, "tuned logreg", []).baseline == "the baselines"


def test_the_summary_gives_the_cross_ticker_report_the_choice_and_the_gate_in_numbers():
    choice = {
        names.TAG_WINNER_FAMILY: "logreg",
        names.TAG_WINNER_RUN: "a",
        names.TAG_BEST_BASELINE: "baseline_always_up",
        names.TAG_BEST_BASELINE_RUN: "b",
    }
    summary = pipeline_summary(
        compare_board(),
        choice,
        {"backtest_sharpe": 0.7, "buy_and_hold_sharpe": 1.2},
        REGISTERED,
        {"ticker": "SPY", "range": "2000-01-03 to 2012-12-31"},
        "cv_mcc_mean",
        "The sentence.",
    )
    assert (summary.ticker, summary.first_date, summary.last_date) == ("SPY", "2000-01-03", "2012-12-31")
    assert (summary.family, summary.score, summary.score_std) == ("logreg", 0.06, 0.02)
    assert (summary.best_baseline, summary.best_baseline_score) == ("baseline_always_up", 0.04)
    assert (summary.decision, summary.ci_low, summary.registered) == ("registered", 0.33, "models:/psystock-X/2")
    assert (summary.sharpe, summary.buy_and_hold_sharpe, summary.verdict) == (0.7, 1.2, "The sentence.")
    assert summary.scores == {"logreg": 0.06, "baseline_always_up": 0.04, "xgboost": 0.01}
    assert summary.baselines == ("baseline_always_up",)
    ranked_by_holdout = pipeline_summary(compare_board(), choice, {}, REGISTERED, {}, "test_mcc", "")
    assert ranked_by_holdout.score_std is None and ranked_by_holdout.ticker == "?"  # a holdout score has no folds
