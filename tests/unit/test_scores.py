import numpy as np
import pytest
from sklearn import metrics

from psystock import PsystockError
from psystock.scores import SCORES, all_scores, compute, resampled, score

Y_TRUE = np.array([1, 0, 1, 1, 0, 1, 0, 0])
PROBA = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.51, 0.5, 0.1])
Y_PRED = (PROBA > 0.5).astype(int)

SKLEARN = {
    "mcc": lambda: metrics.matthews_corrcoef(Y_TRUE, Y_PRED),
    "balanced_accuracy": lambda: metrics.balanced_accuracy_score(Y_TRUE, Y_PRED),
    "f1": lambda: metrics.f1_score(Y_TRUE, Y_PRED),
    "accuracy": lambda: metrics.accuracy_score(Y_TRUE, Y_PRED),
    "precision": lambda: metrics.precision_score(Y_TRUE, Y_PRED),
    "recall": lambda: metrics.recall_score(Y_TRUE, Y_PRED),
    "roc_auc": lambda: metrics.roc_auc_score(Y_TRUE, PROBA),
    "log_loss": lambda: metrics.log_loss(Y_TRUE, PROBA),
}


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_each_score_equals_scikit_learn(name):
    assert compute(name, Y_TRUE, PROBA) == pytest.approx(SKLEARN[name]())


def test_the_built_in_scores_all_have_a_scikit_learn_twin():
    assert set(SKLEARN) <= set(SCORES)


@pytest.mark.parametrize("name", SCORES)
def test_every_score_is_one_record_whose_perfect_predictor_scores_its_best(name):
    found = SCORES[name]
    assert found.description and (found.from_counts is None) != (found.from_probabilities is None)
    assert compute(name, Y_TRUE, Y_TRUE) == pytest.approx(found.best, abs=1e-5)
    assert found.loss(compute(name, Y_TRUE, PROBA)) >= 0


@pytest.mark.parametrize("constant", [0, 1])
@pytest.mark.parametrize("up_rate", [0.2, 0.55, 0.9])
def test_every_constant_predictor_scores_zero_on_the_default_metric(constant, up_rate):
    """The reason MCC is the default: always-up (or always-down) learns nothing, and scores 0
    whatever the up-rate, where F1 rewards always-up with 2p / (1 + p)."""
    rng = np.random.default_rng(1)
    truth = (rng.random(500) < up_rate).astype(int)
    always = np.full(500, constant)
    assert compute("mcc", truth, always) == 0.0
    assert compute("balanced_accuracy", truth, always) == pytest.approx(0.5)
    if constant == 1:
        p = truth.mean()
        assert compute("f1", truth, always) == pytest.approx(2 * p / (1 + p))


def test_resampled_scores_equal_scoring_each_resample():
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(Y_TRUE), (50, len(Y_TRUE)))
    for name in SCORES:
        expected = []
        for row in indices:
            both = len(np.unique(Y_TRUE[row])) == 2
            expected.append(
                compute(name, Y_TRUE[row], PROBA[row]) if both or not SCORES[name].needs_probabilities else np.nan
            )
        np.testing.assert_allclose(resampled(name, Y_TRUE, PROBA, indices), expected, err_msg=name)


def test_hard_answers_have_no_probability_scores():
    found = all_scores([1, 0, 1, 0], [1, 1, 1, 1], probabilistic=False)
    assert "roc_auc" not in found and "log_loss" not in found
    assert found["recall"] == 1.0 and found["precision"] == 0.5 and found["mcc"] == 0.0


def test_loss_is_the_distance_from_the_best():
    assert score("mcc").loss(0.25) == pytest.approx(0.75)
    assert score("f1").loss(0.66) == pytest.approx(0.34)  # the reference's 1 - F1
    assert score("log_loss").loss(0.69) == pytest.approx(0.69)


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(PsystockError, match="metric must be one of mcc, balanced_accuracy, f1"):
        score("sharpe")
