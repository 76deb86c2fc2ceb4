import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError
from psystock.bootstrap import Comparison, Interval
from psystock.names import (
    IMPROVEMENT,
    IMPROVEMENT_CI_HIGH,
    IMPROVEMENT_CI_LOW,
    TAG_DECISION,
    TAG_GATE_BASELINE,
    TAG_HOLDOUT_RANGE,
    TAG_REASON,
    VERSION_TAG_BEST_BASELINE,
    VERSION_TAG_DATASET_DIGEST,
    VERSION_TAG_EVIDENCE,
    VERSION_TAG_HOLDOUT,
    VERSION_TAG_METRIC,
    VERSION_TAG_PIPELINE_RUN,
    VERSION_TAG_REFIT_RANGE,
    VERSION_TAG_REFIT_ROWS,
    VERSION_TAG_TUNED_RUN,
    Decision,
    against,
    gate_baseline_metric,
    gate_candidate_metric,
    model_name,
)
from psystock.registry import Incumbent, challenge, check_same_days, decide, holdout_range, version_tags, weigh
from psystock.scores import compute


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


def answers(truth, answer, start="2020-01-01"):
    """Holdout answers as a model or baseline run logs them (``holdout/predictions.csv``)."""
    days = pd.date_range(start, periods=len(truth), freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"date": days, "truth": truth, "answer": answer})


def planted(n=300, seed=0):
    """A candidate right on 90% of days, always-up and a coin as the baselines."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    model = np.where(rng.random(n) < 0.9, truth, 1 - truth)
    return answers(truth, model), {
        "baseline_always_up": answers(truth, np.ones(n, dtype=int)),
        "baseline_random_rate": answers(truth, rng.integers(0, 2, n)),
    }


def test_the_gate_weighs_the_candidate_against_every_baseline_on_the_same_days():
    candidate, baselines = planted()
    weighing = weigh("mcc", candidate, baselines, 0.95, 0, 7)
    assert weighing.verdict.register and weighing.verdict.baseline in baselines
    assert weighing.candidate_score == pytest.approx(compute("mcc", candidate["truth"], candidate["answer"]))
    for name, baseline in baselines.items():
        assert weighing.baseline_scores[name] == pytest.approx(compute("mcc", baseline["truth"], baseline["answer"]))
        assert weighing.evidence[name].difference.value == pytest.approx(
            weighing.candidate_score - weighing.baseline_scores[name]
        )
    assert weighing.holdout_range == "2020-01-01..2020-10-26"
    assert weigh("mcc", candidate, baselines, 0.95, 0, 7) == weighing  # the seed fixes the bootstrap


def test_the_register_run_logs_every_comparison_and_the_one_the_verdict_turned_on():
    candidate, baselines = planted()
    weighing = weigh("mcc", candidate, baselines, 0.95, 0, 7)
    metrics, closest = weighing.metrics(), weighing.verdict.baseline
    assert metrics[gate_candidate_metric("mcc")] == weighing.candidate_score
    for name in baselines:
        d = weighing.evidence[name].difference
        assert metrics[against(name, "mcc")] == weighing.baseline_scores[name]
        assert (metrics[against(name, IMPROVEMENT_CI_LOW)], metrics[against(name, IMPROVEMENT_CI_HIGH)]) == (
            d.low,
            d.high,
        )
    assert metrics[gate_baseline_metric("mcc")] == weighing.baseline_scores[closest]
    assert metrics[IMPROVEMENT] == weighing.evidence[closest].difference.value
    assert weighing.tags() == {
        TAG_DECISION: Decision.REGISTERED,
        TAG_REASON: weighing.verdict.reason,
        TAG_HOLDOUT_RANGE: "2020-01-01..2020-10-26",
        TAG_GATE_BASELINE: closest,
    }


def test_a_gate_without_baselines_logs_the_candidate_alone_and_refuses():
    candidate, _ = planted()
    weighing = weigh("mcc", candidate, {}, 0.95, 0, 7)
    assert not weighing.verdict.register
    assert set(weighing.metrics()) == {gate_candidate_metric("mcc")}


@pytest.mark.parametrize(
    "baseline",
    [
        answers([1, 0, 1], [1, 1, 1], start="2020-01-02"),  # other days
        answers([1, 0], [1, 1]),  # fewer days
        answers([1, 1, 1], [1, 1, 1]),  # other outcomes
    ],
    ids=["dates", "length", "truth"],
)
def test_answers_to_other_days_cannot_be_paired(baseline):
    with pytest.raises(PsystockError, match="different holdout days: pass a compare run of the same pipeline"):
        check_same_days(answers([1, 0, 1], [0, 0, 1]), baseline)


def test_answers_without_dates_are_paired_by_row():
    check_same_days(
        pd.DataFrame({"truth": [1, 0], "answer": [1, 1]}), pd.DataFrame({"truth": [1, 0], "answer": [0, 0]})
    )


def test_the_holdout_range_is_its_first_and_last_day_or_its_size():
    assert holdout_range(answers([1, 0, 1], [1, 1, 1])) == "2020-01-01..2020-01-03"
    assert holdout_range(pd.DataFrame({"truth": [1, 0], "answer": [1, 1]})) == "2 rows"


def test_a_registered_version_carries_its_evidence_and_what_it_was_refit_on():
    candidate, baselines = planted()
    weighing = weigh("mcc", candidate, baselines, 0.95, 0, 7)
    tags = version_tags(
        weighing, tuned_run="t1", pipeline_run="p1", dataset_digest="", refit_days=("2014-09-17", "2020-12-31"), rows=9
    )
    assert tags == {
        VERSION_TAG_DATASET_DIGEST: "unknown",
        VERSION_TAG_PIPELINE_RUN: "p1",
        VERSION_TAG_TUNED_RUN: "t1",
        VERSION_TAG_BEST_BASELINE: weighing.verdict.baseline,
        VERSION_TAG_METRIC: "mcc",
        VERSION_TAG_HOLDOUT: "2020-01-01..2020-10-26",
        VERSION_TAG_EVIDENCE: weighing.verdict.reason,
        VERSION_TAG_REFIT_RANGE: "2014-09-17..2020-12-31",
        VERSION_TAG_REFIT_ROWS: "9",
    }


def champion_said(candidate: pd.DataFrame, p_up: np.ndarray) -> pd.DataFrame:
    """A champion's answers (``day``, ``p_up``) on the candidate's days, as its history gives them."""
    return pd.DataFrame({"day": candidate["date"], "p_up": p_up})


def test_a_candidate_surely_better_on_the_days_the_champion_never_saw_replaces_it():
    candidate, _ = planted()
    coin = np.random.default_rng(5).random(len(candidate))
    met = Incumbent("models:/psystock-X/3", "2020-03-31", champion_said(candidate, coin))
    found = challenge("mcc", candidate, met, 0.95, 0, 7)
    unseen = candidate[candidate["date"] > "2020-03-31"]
    assert found.days == len(unseen) == 300 - 91
    assert found.wins and found.decision == Decision.REGISTERED and found.alias == "champion"
    assert found.candidate_score == pytest.approx(compute("mcc", unseen["truth"], unseen["answer"]))
    assert found.champion_score == pytest.approx(compute("mcc", unseen["truth"], coin[91:]))
    metrics = found.metrics()
    assert metrics["unseen_days"] == 209 and metrics["improvement_ci_low_vs_champion"] > 0
    assert metrics["mcc_vs_champion"] == found.champion_score
    assert found.reason.startswith(
        "mcc on the 209 holdout day(s) after the champion's refit range (which ends 2020-03-31), "
        "2020-04-01..2020-10-26, against models:/psystock-X/3: "
    )
    assert found.reason.endswith(": above 0.0")
    assert found.tags() == {
        "psystock.decision": "registered",
        "psystock.incumbent": "models:/psystock-X/3",
        "psystock.challenge": found.reason,
    }


def test_a_candidate_no_better_than_the_champion_is_its_challenger():
    candidate, _ = planted()
    met = Incumbent("models:/psystock-X/3", "2020-03-31", champion_said(candidate, candidate["answer"].to_numpy()))
    found = challenge("mcc", candidate, met, 0.95, 0, 7)
    assert not found.wins and found.decision == Decision.CHALLENGER and found.alias == "challenger"
    assert found.metrics()["improvement_vs_champion"] == 0
    assert found.reason.endswith("the interval's low end is not above 0.0")
    assert found.tags()["psystock.decision"] == "challenger"


def test_too_few_unseen_days_or_a_champion_that_cannot_be_asked_leave_the_champion_in_place():
    candidate, _ = planted()
    late = Incumbent("models:/psystock-X/3", "2020-10-10", champion_said(candidate, np.full(300, 0.5)))
    found = challenge("mcc", candidate, late, 0.95, 0, 7)
    assert (found.days, found.wins, found.evidence) == (16, False, None)
    assert found.reason == (
        "16 holdout day(s) after the champion's refit range (which ends 2020-10-10): at least 30 are needed "
        "to weigh the candidate against models:/psystock-X/3, so it stays"
    )
    assert found.metrics() == {"unseen_days": 16.0}
    assert challenge("mcc", candidate, late, 0.95, 0, 7, min_days=10).evidence is not None
    mute = Incumbent("models:/psystock-X/3", "2020-03-31", None, "it predates the serving contract")
    found = challenge("mcc", candidate, mute, 0.95, 0, 7)
    assert not found.wins and found.reason == (
        "the champion models:/psystock-X/3 cannot be scored (it predates the serving contract): it stays"
    )


def test_a_version_that_met_a_champion_says_how_it_fared():
    candidate, baselines = planted()
    weighing = weigh("mcc", candidate, baselines, 0.95, 0, 7)
    met = Incumbent("models:/psystock-X/3", "2020-10-10", champion_said(candidate, np.full(300, 0.5)))
    found = challenge("mcc", candidate, met, 0.95, 0, 7)
    tags = version_tags(
        weighing, tuned_run="t", pipeline_run="p", dataset_digest="d", refit_days=("a", "b"), rows=3, challenge=found
    )
    assert tags["against_champion"] == found.reason
    assert "against_champion" not in version_tags(
        weighing, tuned_run="t", pipeline_run="p", dataset_digest="d", refit_days=("a", "b"), rows=3
    )
