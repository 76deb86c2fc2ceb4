"""The champion gate: pure (evidence in, decision out; the registry's own calls, looking the
champion up and promoting a version, are :mod:`psystock.mlflow_io.champion`'s).

The gate: the paired block bootstrap of
the tuned model's holdout score against each baseline's (:func:`evidence`)
must exclude an improvement of ``min_improvement`` or less; MLflow's own
model-validation API (``mlflow.validate_evaluation_results`` with a
``MetricThreshold``) checks the interval's low end.
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
    from mlflow import validate_evaluation_results
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

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
    try:
        if not d.low > min_improvement:  # strict, and refuses an undefined interval
            raise ModelValidationFailedException("at or below the margin")
        validate_evaluation_results(
            {names.IMPROVEMENT_CI_LOW: MetricThreshold(threshold=min_improvement, greater_is_better=True)},
            EvaluationResult(metrics={names.IMPROVEMENT_CI_LOW: d.low}, artifacts={}),
        )
    except ModelValidationFailedException:
        reason = f"{stated}: the interval's low end is not above {min_improvement}"
        return Verdict(names.Decision.REFUSED, reason, baseline, closest)
    return Verdict(names.Decision.REGISTERED, f"{stated}: above {min_improvement}", baseline, closest)


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
) -> dict[str, str]:
    """The tags of a registered version: the holdout evidence it passed on, and what it was refit on."""
    return {
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
