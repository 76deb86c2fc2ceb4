import re

import pandas as pd

from psystock.report import Findings, Gate, best_rows, render_html, render_markdown, verdict

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
