import re

import pandas as pd

from psystock.report import best_rows, render_html, render_markdown

PNG = b"\\x89PNG\\r\\n\\x1a\\nfake"


def board():
    return pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "family": ["baseline", "logreg", "keras"],
            "run_name": ["baseline_always_up", "logistic_regression_model_baseline", "keras_model_baseline"],
            "run_id": ["a", "b", "c"],
            "f1_experiment_score": [0.71, 0.66, 0.60],
            "test_accuracy": [0.55, 0.58, 0.52],
            "test_log_loss": [float("nan"), 0.69, 0.68],
            "test_up_rate": [0.55, 0.55, 0.55],
        }
    )


def test_best_per_column_respects_direction_and_missing_values():
    assert best_rows(board()) == {"f1_experiment_score": 0, "test_accuracy": 1, "test_log_loss": 2}


def test_html_report_is_self_contained_and_marks_the_best():
    page = render_html(
        board(),
        "f1_experiment_score",
        {"ticker": "BTC-USD", "digest": "abc"},
        {"split": "chronological"},
        PNG,
        {"keras_model_baseline": {"ROC curve": PNG}},
    )
    assert "http://" not in page and "https://" not in page  # nothing to fetch: opens offline
    assert page.count("data:image/png;base64,") == 2
    best = re.findall(r'<td class="best">([^<]*)</td>', page)
    assert best == ["0.7100", "0.5800", "0.6800"]
    assert '<tr class="baseline">' in page and "BTC-USD" in page


def test_markdown_report_bolds_the_best_values():
    text = render_markdown(board(), "f1_experiment_score", {"ticker": "BTC-USD"}, {"split": "random"})
    assert "**0.7100**" in text and "**0.5800**" in text and "**0.6800**" in text
    assert "- **ticker**: BTC-USD" in text
    assert "**0.5500**" not in text  # the up-rate is a fact of the split, not a score
