"""The champion gate: may a tuned model replace the production champion?

The decision is pure (scores in, decision out); MLflow's own model-validation
API (``mlflow.validate_evaluation_results`` with a ``MetricThreshold``) makes
the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from psystock.leaderboard import LOWER_IS_BETTER
from psystock.validation import check_min_improvement

CHAMPION = "champion"


def model_name(ticker: str) -> str:
    """The registered model of a ticker: ``psystock-<ticker>``."""
    return f"psystock-{ticker}"


@dataclass(frozen=True)
class Decision:
    register: bool
    reason: str
    candidate: float
    baseline: float | None


def decide(metric: str, candidate: float, baseline: float | None, min_improvement: float = 0.0) -> Decision:
    """Register only a model that beats the best baseline by more than ``min_improvement``.

    With ``min_improvement`` 0 the model must be strictly better: a model that
    only ties "always up" has learned nothing worth serving.
    """
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    check_min_improvement(min_improvement)
    if baseline is None:
        return Decision(False, "no baseline was scored, so nothing shows the model is worth serving", candidate, None)
    greater = metric not in LOWER_IS_BETTER
    if candidate == baseline:
        return Decision(False, f"{metric} {candidate:.4f} only ties the best baseline", candidate, baseline)
    threshold = baseline + min_improvement if greater else baseline - min_improvement
    try:
        import mlflow

        mlflow.validate_evaluation_results(
            {metric: MetricThreshold(threshold=threshold, greater_is_better=greater)},
            EvaluationResult(metrics={metric: candidate}, artifacts={}),
        )
    except ModelValidationFailedException:
        margin = f" + {min_improvement}" if min_improvement else ""
        return Decision(
            False, f"{metric} {candidate:.4f} does not beat the best baseline's {baseline:.4f}{margin}", candidate, baseline
        )
    return Decision(True, f"{metric} {candidate:.4f} beats the best baseline's {baseline:.4f}", candidate, baseline)
