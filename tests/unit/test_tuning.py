import cloudpickle
import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError, this_process
from psystock.models import get_family
from psystock.protocol import cross_validate, cv_answers
from psystock.training import family_candidate
from psystock.tuning import Objective, SearchSettings, TrialResult, cv_scores, flatten, tune


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 2, (n, 4)), columns=list("0123"))
    y = pd.Series(np.where(rng.random(n) < 0.2, 1 - X["1"], X["1"]), name="4")
    return X, y


def run(seed, max_evals=4, trials=None, metric="mcc", **settings):
    X, y = data()
    return tune(
        get_family("logreg"),
        X,
        y,
        split="chronological",
        n_folds=3,
        metric=metric,
        settings=SearchSettings(max_evals, seed, **settings),
        on_trial=(trials.append if trials is not None else lambda t: None),
    )


def test_every_trial_is_reported_with_fold_scores():
    seen: list[TrialResult] = []
    result = run(seed=1, max_evals=5, trials=seen)
    assert [t.number for t in seen] == [1, 2, 3, 4, 5]
    assert all(len(t.fold_scores) == len(t.fold_answers) == 3 for t in seen)
    assert all(t.loss == pytest.approx(1 - np.mean(t.fold_scores)) for t in seen)
    assert result.best.loss == min(t.loss for t in seen)
    assert not result.stopped_early


def test_same_seed_samples_the_same_trials():
    first = [t.params for t in run(seed=7).trials]
    second = [t.params for t in run(seed=7).trials]
    other = [t.params for t in run(seed=8).trials]
    assert first == second
    assert first != other


def test_best_loss_matches_a_fresh_cross_validation_of_its_parameters():
    result = run(seed=3)
    X, y = data()
    family = get_family("logreg")
    again = cv_scores(family, X, y, family.params(result.best.params), "chronological", 3, 3, "mcc")
    assert again == pytest.approx(result.best.fold_scores)


KERAS_SAMPLE = {"units": 8, "layers": 2, "dropout": 0.3, "epochs": 2, "validation_split": 0.0}


@pytest.mark.parametrize(("family", "sample"), [("logreg", {"C": 0.3}), ("keras", KERAS_SAMPLE)])
def test_a_trial_keeps_its_fold_answers_and_they_are_a_fresh_cross_validations_to_the_digit(family, sample):
    """So the tuned model's CV is scored from the best trial's answers, not fit again."""
    X, y = data()
    family = get_family(family)
    trial = Objective(family, X, y, "chronological", 3, 5, "mcc")(sample)
    fresh = family_candidate(family, family.params(trial["params"]), 5)
    again = list(cv_answers(fresh, X, y, "chronological", 3))
    assert len(trial["fold_answers"]) == 3
    assert all(np.array_equal(kept, new) for kept, new in zip(trial["fold_answers"], again, strict=True))
    scored = cross_validate(fresh, X, y, "chronological", 3, answers=trial["fold_answers"])
    assert [fold["mcc"] for fold in scored] == trial["fold_scores"]
    other = family_candidate(family, family.params(trial["params"]), 5)
    assert scored == cross_validate(other, X, y, "chronological", 3)


def test_early_stop_ends_the_search_after_that_many_trials_without_a_better_loss():
    result = run(seed=5, max_evals=60, early_stop=3)
    losses = [t.loss for t in result.trials]
    improved = [i for i, loss in enumerate(losses) if loss < min(losses[:i], default=np.inf)]
    assert result.stopped_early
    assert len(losses) < 60
    assert len(losses) - 1 - improved[-1] == 3  # exactly three trials after the last improvement


def test_timeout_ends_the_search():
    result = run(seed=5, max_evals=100_000, timeout=1.0)
    assert 1 <= len(result.trials) < 100_000


def test_each_finished_trial_is_reported_once_in_order_with_the_process_it_ran_in():
    reported: list[TrialResult] = []
    X, y = data()
    result = tune(
        get_family("logreg"),
        X,
        y,
        split="chronological",
        n_folds=3,
        metric="mcc",
        settings=SearchSettings(3, 1),
        on_trial=reported.append,
    )
    assert [t.number for t in reported] == [1, 2, 3]
    assert reported == result.trials
    assert {t.process for t in reported} == {this_process()}


def test_the_objective_survives_the_trip_to_a_spark_worker():
    X, y = data()
    objective = Objective(get_family("xgboost"), X, y, "chronological", 3, 1, "mcc")
    sample = {"max_depth": 2, "learning_rate": 0.3}
    assert cloudpickle.loads(cloudpickle.dumps(objective))(sample)["loss"] == objective(sample)["loss"]


@pytest.mark.parametrize(
    ("family", "sample"),
    [
        ("logreg", {"solver": "lbfgs", "l1_ratio": 1.0}),  # lbfgs cannot do L1: the fit refuses it
        ("keras", {"dropout": 1.5}),  # refused by the trainer, before any fit
    ],
)
def test_an_invalid_point_is_a_failed_trial_not_a_crash(family, sample):
    X, y = data()
    objective = Objective(get_family(family), X, y, "chronological", 3, 1, "mcc")
    result = objective(sample)
    assert result["status"] == "fail" and result["loss"] == np.inf and result["error"]
    assert result["fold_scores"] == result["fold_answers"] == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_evals": 0}, "max_evals must be at least 1, got 0"),
        ({"early_stop": -1}, "early_stop must be 0"),
        ({"timeout": -2}, "timeout must be 0"),
        ({"parallelism": 4}, r"parallelism=4 needs spark_master \(local\[4\]"),
    ],
)
def test_bad_search_settings_cannot_be_built(settings, message):
    with pytest.raises(PsystockError, match=message):
        SearchSettings(**{"max_evals": 5, "seed": 1, **settings})


def test_flatten_merges_nested_choices():
    assert flatten({"C": np.float64(2.0), "penalty": {"solver": "saga", "l1_ratio": 0.3}}) == {
        "C": 2.0,
        "solver": "saga",
        "l1_ratio": 0.3,
    }


def test_the_loss_follows_the_metric():
    """MCC by default: 1 - its mean over the folds; F1 (the reference's) when asked."""
    for metric in ("mcc", "f1"):
        result = run(seed=2, max_evals=3, metric=metric)
        assert all(t.loss == pytest.approx(1 - np.mean(t.fold_scores)) for t in result.trials)
    X, y = data()
    family = get_family("logreg")
    params = family.defaults()
    f1 = cv_scores(family, X, y, params, "chronological", 3, 1, "f1")
    mcc = cv_scores(family, X, y, params, "chronological", 3, 1, "mcc")
    assert f1 != mcc


def test_the_search_is_logged_as_a_table_of_its_trials_and_its_best_one():
    from psystock import names
    from psystock.models import format_hyperparameters

    result = run(3, max_evals=4)
    ids = {t.number: f"run{t.number}" for t in result.trials}
    table = result.table("mcc", ids)
    assert table["trial"].tolist() == [1, 2, 3, 4] and table["run_id"].tolist() == ["run1", "run2", "run3", "run4"]
    assert table["loss"].tolist() == [t.loss for t in result.trials]
    assert table["cv_mcc_mean"].tolist() == [t.mean_score for t in result.trials]
    assert set(result.best.params) <= set(table.columns)
    assert result.best_params() == {f"best_{k}": v for k, v in result.best.params.items()}
    assert result.best_metrics("mcc") == {
        "best_cv_mcc": result.best.mean_score,
        "best_loss": result.best.loss,
        "trials": 4,
    }
    family = get_family("logreg")
    assert result.best_tags(family, ids) == {
        names.TAG_HYPERPARAMETERS: format_hyperparameters(family, family.params(result.best.params)),
        names.TAG_BEST_TRIAL_RUN: f"run{result.best.number}",
        names.TAG_STOPPED_EARLY: "false",
    }
    assert result.best_tags(family, {})[names.TAG_BEST_TRIAL_RUN] == ""  # a trial not logged names no run


def test_the_search_says_where_its_trials_run():
    assert SearchSettings(5, 1).backend == "Trials (sequential)"
    assert SearchSettings(5, 1, parallelism=2, spark_master="local[2]").backend == "SparkTrials local[2], parallelism 2"
    assert SearchSettings(5, 1, spark_master="local[2]").backend == "SparkTrials local[2], parallelism default"
