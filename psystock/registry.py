"""The champion gate: pure (evidence in, decision out; the registry's own calls, looking the
champion up and promoting a version, are :mod:`psystock.mlflow_io.champion`'s).

The gate: the paired block bootstrap of
the tuned model's holdout score against each baseline's (:func:`evidence`)
must exclude an improvement of ``min_improvement`` or less; MLflow's own
model-validation API (``mlflow.validate_evaluation_results`` with a
``MetricThreshold``) checks the interval's low end. A candidate that passes
must also beat the champion it would replace (:func:`challenge`), by the same
test on the holdout days the champion never saw; otherwise it is registered
as the ``challenger`` and the champion stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from psystock import PsystockError, names
from psystock.validation import check_min_improvement

if TYPE_CHECKING:  # the bootstrap's import (arch) is not for main, which only looks the champion up
    from psystock.bootstrap import Comparison


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, why, and the evidence it turned on: the comparison with the baseline
    the model beat by the least (None without baselines)."""

    decision: names.Decision
    reason: str
    baseline: str
    evidence: Comparison | None

    @property
    def register(self) -> bool:
        return self.decision is names.Decision.REGISTERED


def evidence(
    metric: str,
    truth: np.ndarray,
    model_answers: np.ndarray,
    baseline_answers: np.ndarray,
    confidence: float,
    block_length: int,
    seed: int,
    margin: float = 0.0,
) -> Comparison:
    """The gate's evidence: ``metric`` of the model minus the baseline's on the same holdout days,
    bootstrapped together (the days' dependence, in which of them each got right, sets the
    blocks), with a one-sided p-value that the model is no more than ``margin`` better."""
    from psystock import bootstrap, scores

    def of(answers: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return lambda indices: scores.resampled(metric, truth, answers, indices)

    hits = (scores.predictions(model_answers) == truth).astype(float)
    hits -= (scores.predictions(baseline_answers) == truth).astype(float)
    return bootstrap.paired_difference(
        of(model_answers), of(baseline_answers), len(truth), hits, confidence, block_length, margin, seed=seed
    )


def decide(metric: str, evidence: Mapping[str, Comparison], min_improvement: float = 0.0) -> Verdict:
    """Register only a model whose holdout ``metric`` beats every baseline's by more than
    ``min_improvement`` with confidence: the low end of each paired bootstrap interval of the
    difference must be above ``min_improvement``. The verdict turns on the baseline with the
    lowest such end.

    Every baseline, not only the best on the development period: those are naive rules or a coin,
    and one chosen for its luck there may draw badly on the holdout; a model that learned nothing
    would then "beat" it. Requiring each comparison to hold is an intersection-union test, so the
    gate's error rate stays that of one comparison.
    """
    check_min_improvement(min_improvement)
    if not evidence:
        reason = "no baseline was scored, so nothing shows the model is worth serving"
        return Verdict(names.Decision.REFUSED, reason, "", None)
    baseline, closest = min(evidence.items(), key=lambda item: _low_end(item[1]))
    d = closest.difference
    stated = (
        f"{metric} on the holdout against {baseline}, the baseline it beats by the least: {d.value:+.3f}, "
        f"{d.confidence:.0%} interval [{d.low:+.3f}, {d.high:+.3f}], one-sided p = {closest.p_value:.3f}"
    )
    if not clears(d.low, min_improvement):
        reason = f"{stated}: the interval's low end is not above {min_improvement}"
        return Verdict(names.Decision.REFUSED, reason, baseline, closest)
    return Verdict(names.Decision.REGISTERED, f"{stated}: above {min_improvement}", baseline, closest)


def clears(low: float, min_improvement: float) -> bool:
    """Whether an interval's low end is above the margin: strictly, and never when undefined,
    as MLflow's own model validation (``validate_evaluation_results``) checks it too."""
    from mlflow import validate_evaluation_results
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    if not low > min_improvement:
        return False
    try:
        validate_evaluation_results(
            {names.IMPROVEMENT_CI_LOW: MetricThreshold(threshold=min_improvement, greater_is_better=True)},
            EvaluationResult(metrics={names.IMPROVEMENT_CI_LOW: low}, artifacts={}),
        )
    except ModelValidationFailedException:
        return False
    return True


def _low_end(comparison: Comparison) -> float:
    low = comparison.difference.low
    return low if low == low else float("-inf")  # an undefined interval decides against the model


@dataclass(frozen=True)
class Weighing:
    """The gate's whole case: the candidate's holdout score, each baseline's, the evidence against
    each, and the verdict, as the register run logs them."""

    metric: str
    candidate_score: float
    baseline_scores: Mapping[str, float]
    evidence: Mapping[str, Comparison]
    verdict: Verdict
    holdout_range: str

    def metrics(self) -> dict[str, float]:
        """The register run's metrics: the candidate's score, and the comparison with each baseline
        (``<what>_vs_<baseline>``) and, unprefixed, with the one the verdict turned on."""
        found = {names.gate_candidate_metric(self.metric): self.candidate_score}
        for name, comparison in self.evidence.items():
            d = comparison.difference
            found |= {
                names.against(name, self.metric): self.baseline_scores[name],
                names.against(name, names.IMPROVEMENT): d.value,
                names.against(name, names.IMPROVEMENT_CI_LOW): d.low,
                names.against(name, names.IMPROVEMENT_CI_HIGH): d.high,
                names.against(name, names.P_VALUE): comparison.p_value,
            }
        closest = self.verdict.evidence
        if closest is not None:
            d = closest.difference
            found |= {
                names.gate_baseline_metric(self.metric): self.baseline_scores[self.verdict.baseline],
                names.IMPROVEMENT: d.value,
                names.IMPROVEMENT_CI_LOW: d.low,
                names.IMPROVEMENT_CI_HIGH: d.high,
                names.P_VALUE: closest.p_value,
                names.BLOCK_LENGTH: d.block_length,
            }
        return found

    def tags(self) -> dict[str, str]:
        return {
            names.TAG_DECISION: self.verdict.decision,
            names.TAG_REASON: self.verdict.reason,
            names.TAG_HOLDOUT_RANGE: self.holdout_range,
            names.TAG_GATE_BASELINE: self.verdict.baseline,
        }


def weigh(
    metric: str,
    candidate: pd.DataFrame,
    baselines: Mapping[str, pd.DataFrame],
    confidence: float,
    block_length: int,
    seed: int,
    min_improvement: float = 0.0,
) -> Weighing:
    """The gate on the holdout answers (``truth``, ``answer``, and ``date`` where known) of the
    candidate and of each baseline, which must be the same days."""
    from psystock.scores import compute

    truth, answers = candidate["truth"].to_numpy(), candidate["answer"].to_numpy()
    comparisons, scored = {}, {}
    for name, baseline in baselines.items():
        check_same_days(candidate, baseline)
        comparisons[name] = evidence(
            metric, truth, answers, baseline["answer"].to_numpy(), confidence, block_length, seed, min_improvement
        )
        scored[name] = compute(metric, baseline["truth"], baseline["answer"])
    return Weighing(
        metric=metric,
        candidate_score=compute(metric, truth, answers),
        baseline_scores=scored,
        evidence=comparisons,
        verdict=decide(metric, comparisons, min_improvement),
        holdout_range=holdout_range(candidate),
    )


def check_same_days(candidate: pd.DataFrame, baseline: pd.DataFrame) -> None:
    """Refuse answers to different holdout days: a paired comparison needs the same ones."""
    same = len(candidate) == len(baseline) and np.array_equal(candidate["truth"], baseline["truth"])
    if same and names.HOLDOUT_DATE in candidate and names.HOLDOUT_DATE in baseline:
        days = candidate[names.HOLDOUT_DATE].astype(str), baseline[names.HOLDOUT_DATE].astype(str)
        same = bool((days[0].to_numpy() == days[1].to_numpy()).all())
    if not same:
        raise PsystockError(
            "the tuned model and a baseline were scored on different holdout days: "
            "pass a compare run of the same pipeline"
        )


def holdout_range(answers: pd.DataFrame) -> str:
    """``first..last`` holdout day, or the number of rows of answers without dates."""
    if names.HOLDOUT_DATE not in answers or answers.empty:
        return f"{len(answers)} rows"
    return f"{answers[names.HOLDOUT_DATE].iloc[0]}..{answers[names.HOLDOUT_DATE].iloc[-1]}"


def version_tags(
    weighing: Weighing,
    *,
    tuned_run: str,
    pipeline_run: str,
    dataset_digest: str,
    refit_days: tuple[str, str],
    rows: int,
    challenge: Challenge | None = None,
    holdout_interval: tuple[float, float] | None = None,
) -> dict[str, str]:
    """The tags of a registered version: the holdout evidence it passed on, how it fared against
    the champion it met, and what it was refit on."""
    met = {names.VERSION_TAG_CHALLENGE: challenge.reason} if challenge is not None else {}
    if holdout_interval is not None:
        met[names.VERSION_TAG_HOLDOUT_CI] = f"{holdout_interval[0]!r}..{holdout_interval[1]!r}"
    return met | {
        names.VERSION_TAG_DATASET_DIGEST: dataset_digest or "unknown",
        names.VERSION_TAG_PIPELINE_RUN: pipeline_run,
        names.VERSION_TAG_TUNED_RUN: tuned_run,
        names.VERSION_TAG_BEST_BASELINE: weighing.verdict.baseline,
        names.VERSION_TAG_METRIC: weighing.metric,
        names.VERSION_TAG_HOLDOUT: weighing.holdout_range,
        names.VERSION_TAG_EVIDENCE: weighing.verdict.reason,
        names.VERSION_TAG_REFIT_RANGE: "..".join(refit_days),
        names.VERSION_TAG_REFIT_ROWS: str(rows),
    }


MIN_UNSEEN_DAYS = 30  # the fewest holdout days after the champion's refit range that can weigh against it


@dataclass(frozen=True)
class Incumbent:
    """The champion a candidate meets: its version, the last day it was refit on, and what it
    answers (``day``, ``p_up``) each day the candidate's bars let it predict, causally; None with
    the reason when it cannot be asked."""

    uri: str
    refit_end: str
    answers: pd.DataFrame | None
    unscored: str = ""


@dataclass(frozen=True)
class Challenge:
    """The candidate against the champion on the candidate's holdout days after the champion's
    refit range: the days the champion never saw."""

    incumbent: str
    metric: str
    days: int
    wins: bool
    reason: str
    candidate_score: float | None = None
    champion_score: float | None = None
    evidence: Comparison | None = None

    @property
    def decision(self) -> names.Decision:
        return names.Decision.REGISTERED if self.wins else names.Decision.CHALLENGER

    @property
    def alias(self) -> str:
        return names.CHAMPION if self.wins else names.CHALLENGER

    def metrics(self) -> dict[str, float]:
        found = {names.UNSEEN_DAYS: float(self.days)}
        if self.evidence is not None and self.candidate_score is not None and self.champion_score is not None:
            d = self.evidence.difference
            found |= {
                names.against(names.INCUMBENT, names.gate_candidate_metric(self.metric)): self.candidate_score,
                names.against(names.INCUMBENT, self.metric): self.champion_score,
                names.against(names.INCUMBENT, names.IMPROVEMENT): d.value,
                names.against(names.INCUMBENT, names.IMPROVEMENT_CI_LOW): d.low,
                names.against(names.INCUMBENT, names.IMPROVEMENT_CI_HIGH): d.high,
                names.against(names.INCUMBENT, names.P_VALUE): self.evidence.p_value,
            }
        return found

    def tags(self) -> dict[str, str]:
        return {
            names.TAG_DECISION: self.decision,
            names.TAG_INCUMBENT: self.incumbent,
            names.TAG_CHALLENGE: self.reason,
        }


def challenge(
    metric: str,
    candidate: pd.DataFrame,
    incumbent: Incumbent,
    confidence: float,
    block_length: int,
    seed: int,
    min_improvement: float = 0.0,
    min_days: int = MIN_UNSEEN_DAYS,
) -> Challenge:
    """Whether a candidate that beat the baselines beats the champion too: on the candidate's
    holdout days after the champion's refit range, the paired block bootstrap of the candidate's
    ``metric`` minus the champion's (answers the champion gave each day from the bars before it)
    must have its low end above ``min_improvement``. With fewer than ``min_days`` such days, or a
    champion that cannot be asked, nothing weighs against the champion: it stays."""
    from psystock.scores import compute

    who = incumbent.uri
    if incumbent.answers is None:
        return Challenge(who, metric, 0, False, f"the champion {who} cannot be scored ({incumbent.unscored}): it stays")
    days = candidate[names.HOLDOUT_DATE].astype(str)
    unseen = candidate[days > incumbent.refit_end]
    champion = incumbent.answers.set_index("day")["p_up"]
    unseen = unseen[unseen[names.HOLDOUT_DATE].astype(str).isin(champion.index)]
    n = len(unseen)
    where = f"{n} holdout day(s) after the champion's refit range (which ends {incumbent.refit_end})"
    if n < min_days:
        reason = f"{where}: at least {min_days} are needed to weigh the candidate against {who}, so it stays"
        return Challenge(who, metric, n, False, reason)
    truth, answers = unseen["truth"].to_numpy(), unseen["answer"].to_numpy()
    theirs = champion.loc[unseen[names.HOLDOUT_DATE].astype(str)].to_numpy()
    found = evidence(metric, truth, answers, theirs, confidence, block_length, seed, min_improvement)
    d = found.difference
    stated = (
        f"{metric} on the {where}, {unseen[names.HOLDOUT_DATE].iloc[0]}..{unseen[names.HOLDOUT_DATE].iloc[-1]}, "
        f"against {who}: {d.value:+.3f}, {d.confidence:.0%} interval [{d.low:+.3f}, {d.high:+.3f}], "
        f"one-sided p = {found.p_value:.3f}"
    )
    wins = clears(d.low, min_improvement)
    outcome = "above" if wins else "the interval's low end is not above"
    return Challenge(
        who,
        metric,
        n,
        wins,
        f"{stated}: {outcome} {min_improvement}",
        candidate_score=compute(metric, truth, answers),
        champion_score=compute(metric, truth, theirs),
        evidence=found,
    )
