"""The step cache's store: finding a reusable run by its key, in the tracking store itself.

The keys are computed by :mod:`psystock.caching` (pure); this module tags
runs with them and looks them up.
"""

from __future__ import annotations

from collections.abc import Iterable

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from psystock import names
from psystock.mlflow_io.lifecycle import FINISHED
from psystock.models import BUILT_IN, GENERIC_ENTRY_POINT

# What a finished run of each step must hold to be reused. Every step that
# writes artifacts is here; register's result is tags and a registry entry.
_MODEL_RUN = (names.METRICS_FILE, names.MODEL_SPEC)
EXPECTED_ARTIFACTS: dict[str, tuple[str, ...]] = {
    "fetch_data": (names.artifact(names.PRICES_DIR, names.PRICES_FILE),),
    "build_features": (names.artifact(names.FEATURES_DIR, names.FEATURES_FILE),),
    GENERIC_ENTRY_POINT: _MODEL_RUN,
    **{family.entry_point: _MODEL_RUN for family in BUILT_IN.values()},
    "baselines": (names.BASELINES_FILE,),
    "compare": (names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_FILE),),
    "tune": _MODEL_RUN,
    "report": (
        names.artifact(names.REPORT_DIR, names.REPORT_HTML),
        names.artifact(names.REPORT_DIR, names.REPORT_SUMMARY),
    ),
    "predict": (names.PREDICTIONS_FILE,),
    "monitor": (names.MONITOR_DAYS,),
}


def cache_tags(key: str, code: str = "", inputs: str = "") -> dict[str, str]:
    """Tags that make a step run findable by its cache key, and say what went into it.

    Besides the readable ``psystock.cache_key``, the key is the *name* of a
    tag: tag names are indexed in MLflow's SQL stores, so the lookup seeks
    straight to the runs with this key instead of comparing every run's value.
    The code digest and input identity let a later run say what changed.
    """
    tags = {
        names.TAG_CACHE_KEY: key,
        f"{names.CACHE_TAG_PREFIX}{key}": "1",
        names.TAG_CODE_DIGEST: code,
        names.TAG_INPUTS: inputs,
    }
    return {k: v for k, v in tags.items() if v}


def _newest_finished(experiment_id: str, condition: str) -> Run | None:
    found = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"{condition} AND attributes.status = '{FINISHED}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def latest_step_run(experiment_id: str, entry_point: str, tags: dict[str, str] | None = None) -> Run | None:
    """The newest FINISHED run of a pipeline step in the experiment (with these ``tags``), whatever its key."""
    condition = " AND ".join(
        f"tags.`{name}` = '{value}'" for name, value in {names.TAG_STEP: entry_point, **(tags or {})}.items()
    )
    return _newest_finished(experiment_id, condition)


def find_cached_run(experiment_id: str, key: str, entry_point: str) -> tuple[Run | None, list[str]]:
    """The newest FINISHED run with cache key ``key``, and which of the step's expected artifacts it lacks.

    One indexed query (tag and status, newest first, one row): the cost does
    not grow with the number of runs in the experiment. The run is reusable
    only if it exists and lacks nothing.
    """
    run = _newest_finished(experiment_id, f"tags.`{names.CACHE_TAG_PREFIX}{key}` = '1'")
    if run is None:
        return None, []
    return run, missing_artifacts(run, EXPECTED_ARTIFACTS.get(entry_point, ()))


def missing_artifacts(run: Run, paths: Iterable[str], client: MlflowClient | None = None) -> list[str]:
    """Those of ``paths`` that the run does not hold.

    ``model/...`` is looked up in the model the run logged under that name:
    MLflow 3 keeps a logged model's files in the model's own location (behind a
    proxying server, nowhere under the run's artifacts).
    """
    client = client or MlflowClient()
    listed: dict[str, set[str]] = {}
    missing = []
    for path in paths:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent not in listed:
            try:
                listed[parent] = _listing(client, run, parent)
            except (MlflowException, OSError):
                listed[parent] = set()
        if path not in listed[parent]:
            missing.append(path)
    return missing


def _listing(client: MlflowClient, run: Run, directory: str) -> set[str]:
    if directory != names.MODEL:
        return {a.path for a in client.list_artifacts(run.info.run_id, directory or None)}
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{names.MODEL}'",
        max_results=1,
    )
    if not models:
        return set()
    files = mlflow.artifacts.list_artifacts(artifact_uri=models[0].artifact_location, tracking_uri=client.tracking_uri)
    # Listed paths are relative to the store's root or the model's: keep the name.
    return {names.artifact(names.MODEL, f.path.rsplit("/", 1)[-1]) for f in files}
