import pytest

from psystock import PsystockError
from psystock.bootstrap import Comparison, Interval
from psystock.names import Decision, model_name
from psystock.registry import decide


def evidence(value: float, low: float, high: float, p: float = 0.01) -> Comparison:
    return Comparison(Interval(value, low, high, 0.95, 7), p, 0.0)


def test_model_name_follows_the_ticker():
    assert model_name("BTC-USD") == "psystock-BTC-USD"


def test_a_model_that_surely_beats_every_baseline_is_registered():
    verdict = decide(
        "mcc",
        {
            "baseline_always_up": evidence(0.3, 0.2, 0.4, 0.0005),
            "baseline_persistence": evidence(0.12, 0.05, 0.19, 0.001),
        },
    )
    assert verdict.register and verdict.decision is Decision.REGISTERED
    assert verdict.baseline == "baseline_persistence"  # the closest call decides
    assert verdict.reason == (
        "mcc on the holdout against baseline_persistence, the baseline it beats by the least: "
        "+0.120, 95% interval [+0.050, +0.190], one-sided p = 0.001: above 0.0"
    )


def test_a_better_point_estimate_is_not_enough():
    """Ahead on the days themselves, but the interval admits no improvement: refused, with the numbers."""
    verdict = decide("mcc", {"baseline_always_up": evidence(0.03, -0.04, 0.10, 0.2)})
    assert not verdict.register
    assert "+0.030, 95% interval [-0.040, +0.100], one-sided p = 0.200" in verdict.reason
    assert verdict.reason.endswith("the interval's low end is not above 0.0")


def test_beating_the_unluckiest_baseline_is_not_enough():
    """A coin that drew badly on the holdout is beaten by a model that learned nothing: every
    baseline must be beaten, always-up included."""
    verdict = decide(
        "mcc",
        {"baseline_random_rate": evidence(0.22, 0.04, 0.40), "baseline_always_up": evidence(0.045, -0.08, 0.17, 0.24)},
    )
    assert not verdict.register and verdict.baseline == "baseline_always_up"


def test_the_margin_must_be_exceeded_by_the_low_end():
    assert not decide("mcc", {"b": evidence(0.2, 0.05, 0.3)}, min_improvement=0.05).register  # only reaches it
    assert not decide("mcc", {"b": evidence(0.2, 0.04, 0.3)}, min_improvement=0.05).register
    assert decide("mcc", {"b": evidence(0.2, 0.06, 0.3)}, min_improvement=0.05).register


def test_an_undefined_interval_is_refused():
    verdict = decide("mcc", {"a": evidence(0.3, 0.2, 0.4), "b": evidence(0.1, float("nan"), float("nan"))})
    assert not verdict.register and verdict.baseline == "b"


def test_no_baseline_means_no_registration():
    verdict = decide("mcc", {})
    assert not verdict.register and "no baseline was scored" in verdict.reason


def test_negative_margin_is_an_error():
    with pytest.raises(PsystockError, match="min_improvement must be >= 0"):
        decide("mcc", {"b": evidence(0.2, 0.1, 0.3)}, min_improvement=-0.1)
