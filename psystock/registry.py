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

from psystock import names
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
