"""The protocol: choices from the development period only, the holdout scored with intervals and a backtest."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from psystock import baselines, protocol, registry
from psystock.evaluation import split_dataset
from psystock.features import FeatureSet
from psystock.models import get_family
from psystock.training import family_candidate
from psystock.validation import Split


def dataset(n=400, seed=0, signal=0.8):
    """Labels that follow the day two back with probability ``signal``, days and their returns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    for t in range(2, n):
        y[t] = y[t - 2] if rng.random() < signal else 1 - y[t - 2]
    X = pd.DataFrame({"0": np.roll(y, 2), "1": np.roll(y, 1)}).iloc[2:].reset_index(drop=True)
    labels = pd.Series(y[2:], name="going_up")
    days = pd.Series(pd.date_range("2020-01-01", periods=len(labels), freq="D").strftime("%Y-%m-%d"), name="date")
    moves = np.where(labels == 1, 0.01, -0.01)
    returns = pd.DataFrame({"open_to_close": moves, "close_to_close": moves})
    return FeatureSet(X, labels, days, returns)


LOGREG = get_family("logreg")
SETTINGS = protocol.Settings(cv_folds=4, confidence=0.9, block_length=3)


def logreg():
    return family_candidate(LOGREG, LOGREG.defaults(), 1)


def test_folds_see_only_the_development_period():
    """Swap every holdout label and feature for other data: the cross-validation, which every choice is
    made by, does not move; the holdout scores do."""
    data = dataset()
    other = dataset(seed=9, signal=0.5)
    cut = len(data) - int(np.ceil(0.33 * len(data)))
    swapped = FeatureSet(
        pd.concat([data.X.iloc[:cut], other.X.iloc[cut:]]).reset_index(drop=True),
        pd.concat([data.y.iloc[:cut], other.y.iloc[cut:]]).reset_index(drop=True),
        data.dates,
        data.returns,
    )
    first, second = protocol.evaluate(logreg(), data, SETTINGS), protocol.evaluate(logreg(), swapped, SETTINGS)
    assert first.folds == second.folds
    assert first.holdout_scores["mcc"] != second.holdout_scores["mcc"]


@pytest.mark.parametrize("split", [Split.CHRONOLOGICAL, Split.RANDOM])
def test_given_its_fold_answers_a_candidate_is_fit_once_and_scored_exactly_as_if_cross_validated(split):
    """The tuning refit: the best trial's answers on the folds stand for fitting the folds again."""
    data, settings = dataset(), dataclasses.replace(SETTINGS, split=split)
    fitted: list[int] = []

    def counting(candidate):
        def fit(X, y):
            fitted.append(len(y))
            return candidate.fit(X, y)

        return dataclasses.replace(candidate, fit=fit)

    parts = split_dataset(data, split, settings.test_size, settings.seed)
    answers = list(protocol.cv_answers(logreg(), parts.X_train, parts.y_train, split, settings.cv_folds))
    fresh = protocol.evaluate(counting(logreg()), data, settings)
    assert len(fitted) == settings.cv_folds + 1 and fitted[-1] == len(parts.y_train)
    fitted.clear()
    given = protocol.evaluate(counting(logreg()), data, settings, fold_answers=answers)
    assert fitted == [len(parts.y_train)]  # the final model only
    assert given.folds == fresh.folds and given.metrics() == fresh.metrics()
    with pytest.raises(ValueError, match="shorter"):  # answers for other folds than these are refused
        protocol.evaluate(logreg(), data, settings, fold_answers=answers[:-1])


def test_a_planted_signal_is_found_and_its_interval_excludes_nothing_learned():
    evaluation = protocol.evaluate(logreg(), dataset(), SETTINGS)
    assert evaluation.cv_mean("mcc") > 0.4
    assert evaluation.interval.low > 0.3 and evaluation.interval.value == evaluation.holdout_scores["mcc"]
    metrics = evaluation.metrics()
    assert {
        "cv_mcc_mean",
        "cv_mcc_std",
        "cv_mcc_fold_0",
        "cv_mcc_fold_3",
        "test_mcc",
        "test_mcc_ci_low",
        "test_mcc_ci_high",
        "f1_experiment_score",
        "test_f1",
        "test_up_rate",
        "block_length",
        "backtest_sharpe",
        "backtest_sharpe_ci_low",
        "buy_and_hold_total_return",
    } <= set(metrics)
    assert metrics["f1_experiment_score"] == metrics["test_f1"]
    assert metrics["block_length"] == 3
    assert len(evaluation.folds_frame()) == 4


def test_always_up_scores_zero_and_trades_every_day():
    evaluation = protocol.evaluate(baselines.candidate("always_up", 1), dataset(), SETTINGS)
    assert evaluation.cv_mean("mcc") == 0.0 and evaluation.holdout_scores["mcc"] == 0.0
    assert evaluation.backtest is not None and evaluation.backtest.strategy.exposure == 1.0
    assert "roc_auc" not in evaluation.holdout_scores  # hard answers


def test_a_random_split_keeps_the_reference_protocol_and_scores_its_holdout_in_time_order():
    settings = protocol.Settings(split=Split.RANDOM, cv_folds=3, block_length=2)
    evaluation = protocol.evaluate(logreg(), dataset(), settings)
    assert not settings.chooses_on_cv and settings.ranking_metric() == "test_mcc"
    dates = evaluation.holdout.dates
    assert dates is not None and dates.is_monotonic_increasing
    assert len(evaluation.holdout.truth) == int(np.ceil(0.33 * len(dataset())))


def test_a_table_without_days_is_scored_but_not_backtested():
    data = dataset()
    evaluation = protocol.evaluate(logreg(), FeatureSet(data.X, data.y), SETTINGS)
    assert evaluation.backtest is None and "backtest_sharpe" not in evaluation.metrics()


def test_paired_evidence_prefers_the_model_that_learned():
    data = dataset()
    model = protocol.evaluate(logreg(), data, SETTINGS).holdout
    always = protocol.evaluate(baselines.candidate("always_up", 1), data, SETTINGS).holdout
    evidence = registry.evidence("mcc", model.truth, model.answers, always.answers, 0.9, 3, 1)
    assert evidence.difference.low > 0.3 and evidence.p_value < 0.01
    same = registry.evidence("mcc", model.truth, always.answers, always.answers, 0.9, 3, 1)
    assert same.difference.value == 0.0 and same.p_value == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "sharpe"}, "metric must be one of"),
        ({"confidence": 0}, "confidence must be between 0 and 1"),
        ({"strategy": "short"}, "strategy must be one of"),
        ({"cv_folds": 1}, "cv_folds must be at least 2"),
    ],
)
def test_bad_settings_cannot_be_built(change, message):
    from psystock import PsystockError

    with pytest.raises(PsystockError, match=message):
        protocol.Settings(**change)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
        ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295, got 4294967296"),
        ({"env_manager": "docker"}, "env_manager must be one of local, virtualenv, uv, conda, got 'docker'"),
    ],
)
def test_main_refuses_what_a_step_or_mlflow_would_fail_on_later(changes, message):
    """Each of these used to start the pipeline and fail in its steps with a traceback (a seed numpy
    refuses) or in MLflow's own (an environment manager it does not know)."""
    from psystock import PsystockError
    from psystock.pipeline import MainArgs, check_settings

    check_settings(MainArgs(seed=0, env_manager="uv"))
    check_settings(MainArgs(seed=2**32 - 1))
    with pytest.raises(PsystockError) as raised:
        check_settings(MainArgs(**changes))
    assert str(raised.value) == message


def test_a_seed_numpy_would_refuse_is_refused_by_the_protocol_and_the_search():
    from psystock import PsystockError
    from psystock.tuning import SearchSettings

    message = "seed must be a whole number from 0 to 4294967295, got -1"
    with pytest.raises(PsystockError, match=message):
        protocol.Settings(seed=-1)
    with pytest.raises(PsystockError, match=message):
        SearchSettings(10, -1)
