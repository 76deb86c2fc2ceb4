"""The Model Registry: the champion gate, the champion's lookup and its promotion.

The gate is pure (scores in, decision out); MLflow's own model-validation API
(``mlflow.validate_evaluation_results`` with a ``MetricThreshold``) makes the
comparison. A registered model is ``psystock-<ticker>``; the version that
``predict`` and serving use holds the alias ``champion``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from psystock.leaderboard import LOWER_IS_BETTER
from psystock.mlflow_io import names
from psystock.validation import check_min_improvement


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, why, and the two scores it compared."""

    decision: names.Decision
    reason: str
    candidate: float
    baseline: float | None

    @property
    def register(self) -> bool:
        return self.decision is names.Decision.REGISTERED


def _refused(reason: str, candidate: float, baseline: float | None) -> Verdict:
    return Verdict(names.Decision.REFUSED, reason, candidate, baseline)


def decide(metric: str, candidate: float, baseline: float | None, min_improvement: float = 0.0) -> Verdict:
    """Register only a model that beats the best baseline by more than ``min_improvement``.

    With ``min_improvement`` 0 the model must be strictly better: a model that
    only ties "always up" has learned nothing worth serving.
    """
    from mlflow import validate_evaluation_results
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    check_min_improvement(min_improvement)
    if baseline is None:
        return _refused("no baseline was scored, so nothing shows the model is worth serving", candidate, None)
    greater = metric not in LOWER_IS_BETTER
    if candidate == baseline:
        return _refused(f"{metric} {candidate:.4f} only ties the best baseline", candidate, baseline)
    threshold = baseline + min_improvement if greater else baseline - min_improvement
    try:
        validate_evaluation_results(
            {metric: MetricThreshold(threshold=threshold, greater_is_better=greater)},
            EvaluationResult(metrics={metric: candidate}, artifacts={}),
        )
    except ModelValidationFailedException:
        margin = f" + {min_improvement}" if min_improvement else ""
        reason = f"{metric} {candidate:.4f} does not beat the best baseline's {baseline:.4f}{margin}"
        return _refused(reason, candidate, baseline)
    reason = f"{metric} {candidate:.4f} beats the best baseline's {baseline:.4f}"
    return Verdict(names.Decision.REGISTERED, reason, candidate, baseline)


def champion_uri(ticker: str) -> str | None:
    """``models:/psystock-<ticker>/<version>`` of the champion, or None if the ticker has none yet."""
    name = names.model_name(ticker)
    try:
        version = MlflowClient().get_model_version_by_alias(name, names.CHAMPION)
    except MlflowException:
        return None
    return names.model_version_uri(name, version.version)


def promote(ticker: str, model_run_id: str, tags: dict[str, str]) -> int:
    """Register the run's model as a new version of ``psystock-<ticker>``, move the champion alias
    to it, and return the version number."""
    import mlflow

    name = names.model_name(ticker)
    version = mlflow.register_model(names.run_uri(model_run_id, names.MODEL), name, tags=tags)
    MlflowClient().set_registered_model_alias(name, names.CHAMPION, version.version)
    return int(version.version)
