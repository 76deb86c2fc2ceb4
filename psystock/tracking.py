"""The one module that knows MLflow names: artifact paths, tags, run URIs, run lookups.

Steps never join artifact paths or build ``runs:/`` URIs themselves; they ask
this module, so that renaming an artifact is a one-line change.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterable

import mlflow
from mlflow.entities import Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import (
    MLFLOW_GIT_COMMIT,
    MLFLOW_GIT_REPO_URL,
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_PROJECT_ENTRY_POINT,
    MLFLOW_RUN_NAME,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
)

from psystock import PsystockError

log = logging.getLogger(__name__)

# Artifact paths inside a step run.
PRICES_DIR = "prices"
PRICES_FILE = "prices.csv"
FEATURES_DIR = "features"
FEATURES_FILE = "training_data.csv"
LABEL_DATES_FILE = "label_dates.csv"
MODEL = "model"
PLOTS_DIR = "plots"
METRICS_FILE = "metrics.json"
LEADERBOARD_DIR = "leaderboard"
LEADERBOARD_FILE = "leaderboard.csv"
PREDICTIONS_FILE = "predictions.csv"
REPORT_DIR = "report"
TUNING_DIR = "tuning"

# Tags that psystock sets on its runs.
TAG_STEP = "psystock.step"
TAG_FAMILY = "model_family"
TAG_TRIAL = "trial"
TAG_PROCESS = "psystock.process"  # host:pid that created the run
TRIAL_STEP = "tune_trial"
TAG_WINNER_FAMILY = "psystock.winner_family"
TAG_WINNER_RUN = "psystock.winner_run_id"
TAG_DATASET_DIGEST = "psystock.dataset_digest"
TAG_PIPELINE = "psystock.pipeline_run_id"
# Runs that compete in the leaderboard (trained models and naive baselines).
TAG_ROLE = "psystock.role"
CANDIDATE = "candidate"
BASELINE_FAMILY = "baseline"
TAG_BASELINE = "psystock.baseline"
BASELINES_FILE = "baselines.json"
TAG_BEST_BASELINE = "psystock.best_baseline"
TAG_BEATS_BASELINES = "psystock.beats_baselines"


def run_uri(run_id: str, artifact_path: str) -> str:
    """The ``runs:/`` URI of an artifact of a run."""
    return f"runs:/{run_id}/{artifact_path}"


def run_id_from_uri(uri: str) -> str | None:
    """The run id in a ``runs:/<id>/...`` URI, or None for anything else."""
    if not uri.startswith("runs:/"):
        return None
    return uri[len("runs:/") :].strip("/").split("/", 1)[0] or None


def is_uri(location: str) -> bool:
    return "://" in location or location.startswith("runs:/") or location.startswith("models:/")


def resolve_input(location: str, filename: str, what: str) -> Path:
    """A local file for a step input given as a path or an MLflow artifact URI.

    ``location`` may name the file itself or a directory (local or an artifact
    directory such as ``runs:/<id>/features``) that holds ``filename``.
    """
    if not location:
        raise PsystockError(f"{what}: no input given (pass a runs:/ URI or a path)")
    if is_uri(location) and not location.startswith("file://"):
        local = _download(location, what)
    else:
        local = Path(location.removeprefix("file://")).expanduser()
        if not local.exists():
            raise PsystockError(f"{what}: no such file or directory: {location}")
    if local.is_dir():
        local = local / filename
        if not local.is_file():
            raise PsystockError(f"{what}: {location} has no {filename}")
    return local


def _download(uri: str, what: str) -> Path:
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp()))
    except (MlflowException, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PsystockError(f"{what}: cannot read {uri}: {first_line}") from None


def log_params_once(params: dict[str, str]) -> None:
    """Log step parameters, skipping those already on the run.

    ``mlflow run`` logs a project's parameters itself (shell-quoted); logging
    them again with a different spelling would be refused, so only the
    missing ones are added.
    """
    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params
    missing = [Param(k, v) for k, v in params.items() if k not in existing]
    if missing:
        MlflowClient().log_batch(run.info.run_id, params=missing)


@functools.lru_cache(maxsize=None)
def _git_source(project_dir: str) -> tuple[tuple[str, str], ...]:
    from mlflow.utils.git_utils import get_git_commit, get_git_repo_url

    found = {MLFLOW_GIT_COMMIT: get_git_commit(project_dir), MLFLOW_GIT_REPO_URL: get_git_repo_url(project_dir)}
    return tuple((k, v) for k, v in found.items() if v)


def source_tags(project_dir: str, entry_point: str) -> dict[str, str]:
    """The source tags ``mlflow run`` puts on runs it creates, for the step runs main creates first:
    the checkout the step runs from and its git commit."""
    return {
        MLFLOW_SOURCE_NAME: project_dir,
        MLFLOW_SOURCE_TYPE: "PROJECT",
        MLFLOW_PROJECT_ENTRY_POINT: entry_point,
        **dict(_git_source(project_dir)),
    }


def create_step_run(
    experiment_id: str, parent_run_id: str, entry_point: str, run_name: str, tags: dict[str, str],
    project_dir: str,
) -> str:
    """Create the run a pipeline step will fill in, already linked to its pipeline and its source."""
    all_tags = {
        **source_tags(project_dir, entry_point),
        MLFLOW_PARENT_RUN_ID: parent_run_id,
        MLFLOW_RUN_NAME: run_name,
        TAG_STEP: entry_point,
        TAG_PIPELINE: parent_run_id,
        **tags,
    }
    run = MlflowClient().create_run(experiment_id, tags=all_tags, run_name=run_name)
    return run.info.run_id


def get_run(run_id: str) -> Run:
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise PsystockError(f"run {run_id} not found on {mlflow.get_tracking_uri()}: {exc.message}") from None


def candidate_runs(run_ids: Iterable[str] = (), experiment_id: str | None = None) -> list[Run]:
    """Finished leaderboard candidates (models and baselines): the given ones, or all of an experiment's."""
    run_ids = [r for r in run_ids if r]
    if run_ids:
        runs = [get_run(r) for r in run_ids]
        unfinished = [r.info.run_id for r in runs if r.info.status != "FINISHED"]
        if unfinished:
            raise PsystockError(f"runs to compare are not FINISHED: {', '.join(unfinished)}")
        return runs
    return MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_ROLE}` = '{CANDIDATE}' AND attributes.status = 'FINISHED'",
        max_results=10_000,
    )


def baseline_run_ids(baselines_run_id: str) -> dict[str, str]:
    """Baseline name -> run id, as a ``baselines`` run recorded them."""
    return mlflow.artifacts.load_dict(run_uri(baselines_run_id, BASELINES_FILE))


def load_features(location: str):
    """The training table at ``location`` (a run's features directory, or a CSV).

    A ``label_dates.csv`` beside the table, as ``build_features`` writes it,
    is read too; a bare table in the reference layout is accepted without it.
    """
    import pandas as pd

    from psystock.features import DATE_NAME, feature_set

    path = resolve_input(location, FEATURES_FILE, "training_data")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PsystockError(f"training_data: cannot parse {location}: {str(exc).strip()[:200]}") from None
    dates_path = path.with_name(LABEL_DATES_FILE)
    dates = pd.read_csv(dates_path)[DATE_NAME] if dates_path.is_file() else None
    return feature_set(table, dates)


def load_prices_frame(location: str):
    """The normalised prices a ``fetch_data`` run logged (or any CSV in Yahoo's layout)."""
    from psystock.data import read_csv, validate_prices

    return validate_prices(read_csv(str(resolve_input(location, PRICES_FILE, "prices"))))


@contextlib.contextmanager
def quiet_run_urls():
    """Keep MLflow from printing "View run ... at" for every run a search creates and ends on a server
    (the setting is read at each call, and Spark workers started meanwhile inherit it)."""
    name = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TrialLogger:
    """Logs each tuning trial as a light child run of the tuning run.

    Three calls per trial (create, one batch, terminate) and nothing heavy:
    no model files, no plots. Needs no active run and pickles without its
    client, so Spark workers log their own trials (to ``tracking_uri``).
    The driver then numbers each run in the order TPE proposed it.
    """

    def __init__(self, experiment_id: str, parent_run_id: str, family: str, tracking_uri: str | None = None):
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.family = family
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def __call__(self, params: dict, fold_scores: list[float], loss: float, seconds: float,
                 error: str | None) -> str:
        from mlflow.entities import Metric

        run = self.client.create_run(
            self.experiment_id,
            tags={MLFLOW_PARENT_RUN_ID: self.parent_run_id, TAG_STEP: TRIAL_STEP, TAG_FAMILY: self.family,
                  TAG_PROCESS: this_process()},
            run_name="trial",
        )
        now = int(time.time() * 1000)
        values = {"loss": loss, "seconds": seconds}
        if fold_scores:
            values["mean_f1"] = sum(fold_scores) / len(fold_scores)
            values.update({f"f1_fold_{i}": s for i, s in enumerate(fold_scores)})
        metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if abs(v) != float("inf")]
        tags = [RunTag("error", error[:5000])] if error else []
        self.client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                              tags=tags)
        self.client.set_terminated(run.info.run_id, "FAILED" if error else "FINISHED")
        return run.info.run_id

    def number_trial(self, trial) -> None:
        """Name a finished trial's run by its number (``trial_007``); trials that raised have no run."""
        if trial.run_id:
            self.client.log_batch(trial.run_id, tags=[RunTag(TAG_TRIAL, str(trial.number)),
                                                      RunTag(MLFLOW_RUN_NAME, f"trial_{trial.number:03d}")])


def fail_if_running(run_id: str) -> None:
    """Mark a run FAILED unless it already ended (a step that never started leaves it RUNNING)."""
    client = MlflowClient()
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, "FAILED")


# --- step cache -------------------------------------------------------------

TAG_CACHE_KEY = "psystock.cache_key"
CACHE_TAG_PREFIX = "psystock.cache."
TAG_CODE_DIGEST = "psystock.code_digest"
TAG_INPUTS = "psystock.inputs"
TAG_CACHED_STEP = "psystock.cached_step"
TAG_REUSED_RUN = "psystock.reused_run_id"


def cache_tags(key: str, code: str = "", inputs: str = "") -> dict[str, str]:
    """Tags that make a step run findable by its cache key, and say what went into it.

    Besides the readable ``psystock.cache_key``, the key is the *name* of a
    tag: tag names are indexed in MLflow's SQL stores, so the lookup seeks
    straight to the runs with this key instead of comparing every run's value.
    The code digest and input identity let a later run say what changed.
    """
    tags = {TAG_CACHE_KEY: key, f"{CACHE_TAG_PREFIX}{key}": "1", TAG_CODE_DIGEST: code, TAG_INPUTS: inputs}
    return {k: v for k, v in tags.items() if v}


def latest_step_run(experiment_id: str, entry_point: str) -> Run | None:
    """The newest FINISHED run of a pipeline step in the experiment, whatever its key."""
    found = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_STEP}` = '{entry_point}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


# What a finished run of each step must hold to be reused.
EXPECTED_ARTIFACTS = {
    "fetch_data": (f"{PRICES_DIR}/{PRICES_FILE}",),
    "build_features": (f"{FEATURES_DIR}/{FEATURES_FILE}",),
    "train_logreg": (METRICS_FILE, f"{MODEL}/MLmodel"),
    "train_xgboost": (METRICS_FILE, f"{MODEL}/MLmodel"),
    "train_keras": (METRICS_FILE, f"{MODEL}/MLmodel"),
    "baselines": (BASELINES_FILE,),
    "compare": (f"{LEADERBOARD_DIR}/{LEADERBOARD_FILE}",),
    "predict": (PREDICTIONS_FILE,),
    "tune": (METRICS_FILE, f"{MODEL}/MLmodel"),
}


def find_cached_run(experiment_id: str, key: str, entry_point: str) -> tuple[Run | None, list[str]]:
    """The newest FINISHED run with cache key ``key``, and which of the step's expected artifacts it lacks.

    One indexed query (tag and status, newest first, one row): the cost does
    not grow with the number of runs in the experiment. The run is reusable
    only if it exists and lacks nothing.
    """
    found = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{CACHE_TAG_PREFIX}{key}` = '1' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not found:
        return None, []
    return found[0], missing_artifacts(found[0], EXPECTED_ARTIFACTS.get(entry_point, ()))


def missing_artifacts(run: Run, paths: Iterable[str], client: MlflowClient | None = None) -> list[str]:
    """Those of ``paths`` that the run does not hold.

    ``model/...`` is looked up in the model the run logged under that name:
    MLflow 3 keeps a logged model's files in the model's own location (behind a
    proxying server, nowhere under the run's artifacts).
    """
    client = client or MlflowClient()
    run_id = run.info.run_id
    listed: dict[str, set[str]] = {}
    missing = []
    for path in paths:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent not in listed:
            try:
                if parent == MODEL:
                    # Listed paths are relative to the store's root or the model's: keep the name.
                    listed[parent] = {f"{MODEL}/{a.path.rsplit('/', 1)[-1]}"
                                      for a in _logged_model_files(client, run, MODEL)}
                else:
                    listed[parent] = {a.path for a in client.list_artifacts(run_id, parent or None)}
            except (MlflowException, OSError):
                listed[parent] = set()
        if path not in listed[parent]:
            missing.append(path)
    return missing


def _logged_model_files(client: MlflowClient, run: Run, name: str) -> list:
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{name}'", max_results=1,
    )
    if not models:
        return []
    return mlflow.artifacts.list_artifacts(artifact_uri=models[0].artifact_location, tracking_uri=client.tracking_uri)


def link_cached_run(experiment_id: str, parent_run_id: str, entry_point: str, reused: Run) -> str:
    """A finished child run of the pipeline that points at the reused step run,
    so the new pipeline's tree shows every step."""
    run = MlflowClient().create_run(
        experiment_id,
        run_name=f"{entry_point} (cached)",
        tags={
            MLFLOW_PARENT_RUN_ID: parent_run_id,
            TAG_PIPELINE: parent_run_id,
            TAG_CACHED_STEP: entry_point,
            TAG_REUSED_RUN: reused.info.run_id,
            "mlflow.note.content": f"Cache hit: this step reused run {reused.info.run_id} "
            f"({reused.info.run_name}) instead of running again.",
        },
    )
    MlflowClient().set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def champion_version(name: str, alias: str = "champion") -> str | None:
    """``models:/<name>/<version>`` of the model's alias, or None if it has none yet."""
    try:
        version = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return f"models:/{name}/{version.version}"


def upstream_run(run: Run, param: str) -> Run | None:
    """The run whose ``runs:/`` URI ``run`` took as parameter ``param``, if any."""
    run_id = run_id_from_uri(run.data.params.get(param, ""))
    return get_run(run_id) if run_id else None


def dataset_facts(run: Run) -> dict[str, object]:
    """Ticker, range, rows and digest of the prices behind a model run (following its inputs)."""
    features = upstream_run(run, "training_data")
    prices = upstream_run(features, "prices") if features else None
    if prices is None:
        return {"training data": run.data.params.get("training_data", "?")}
    tags = prices.data.tags
    return {
        "ticker": tags.get("ticker", "?"),
        "range": f"{tags.get('first_date', '?')} to {tags.get('last_date', '?')}",
        "rows (days)": int(prices.data.metrics.get("rows", 0)),
        "digest": tags.get(TAG_DATASET_DIGEST, "?"),
        "source": prices.data.params.get("source", "?"),
        "fetch run": prices.info.run_id,
        "features run": features.info.run_id,
    }


def split_facts(run: Run) -> dict[str, object]:
    """How a model run split its data: parameters and the days on each side."""
    params, tags = run.data.params, run.data.tags
    facts = {name: params.get(name, "?") for name in ("split", "test_size", "seed")}
    facts["train rows"] = tags.get("n_train", "?")
    facts["test rows"] = tags.get("n_test", "?")
    if "test_first_date" in tags:
        facts["train days"] = f"{tags['train_first_date']} to {tags['train_last_date']}"
        facts["test days"] = f"{tags['test_first_date']} to {tags['test_last_date']}"
    return facts


def artifact_bytes(run_id: str, path: str) -> bytes | None:
    """The content of one artifact of a run, or None if it is not there."""
    try:
        return Path(mlflow.artifacts.download_artifacts(run_uri(run_id, path), dst_path=tempfile.mkdtemp())).read_bytes()
    except (MlflowException, OSError):
        return None


def dataset_digest(run: Run) -> str | None:
    """The digest of the prices a model run was trained on, following its inputs back
    (``training_data`` -> build_features -> ``prices`` -> fetch_data)."""
    features = upstream_run(run, "training_data")
    prices = upstream_run(features, "prices") if features else None
    return prices.data.tags.get(TAG_DATASET_DIGEST) if prices else None
