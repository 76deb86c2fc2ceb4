"""The Model Registry's champion: its lookup and its promotion.

A registered model is ``psystock-<ticker>``; the version that ``predict`` and
serving use holds the alias ``champion``. Whether a model may become it is the
gate's to say (:mod:`psystock.registry`, pure).
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from psystock import names


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
