import pytest

from psystock import PsystockError
from psystock.mlflow_io.names import Decision, model_name
from psystock.registry import decide


def test_model_name_follows_the_ticker():
    assert model_name("BTC-USD") == "psystock-BTC-USD"


def test_a_model_that_beats_the_baseline_is_registered():
    decision = decide("f1_experiment_score", 0.74, 0.71)
    assert decision.register and decision.decision is Decision.REGISTERED
    assert decision.reason == "f1_experiment_score 0.7400 beats the best baseline's 0.7100"


def test_a_model_below_the_baseline_is_refused():
    decision = decide("f1_experiment_score", 0.66, 0.71)
    assert not decision.register
    assert "does not beat the best baseline's 0.7100" in decision.reason


def test_a_tie_is_refused():
    assert not decide("f1_experiment_score", 0.71, 0.71).register


def test_the_margin_must_be_exceeded():
    assert not decide("f1_experiment_score", 0.72, 0.71, min_improvement=0.02).register
    assert decide("f1_experiment_score", 0.74, 0.71, min_improvement=0.02).register


def test_lower_is_better_metrics_are_gated_downwards():
    assert decide("test_log_loss", 0.60, 0.69).register
    assert not decide("test_log_loss", 0.70, 0.69).register


def test_no_baseline_means_no_registration():
    assert not decide("f1_experiment_score", 0.9, None).register


def test_negative_margin_is_an_error():
    with pytest.raises(PsystockError, match="min_improvement must be >= 0"):
        decide("f1_experiment_score", 0.9, 0.5, min_improvement=-0.1)
