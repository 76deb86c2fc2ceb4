"""Starting one MLflow Project run in a run created for it: a pipeline's step, or a universe's pipeline.

:func:`launch` needs MLflow alone, not psystock: a Spark task runs it on a
worker that has MLflow and the environment manager but not this package
(the universe ships this module to the workers by value). The run is
created first, with its parent and tags, so the tree of runs is whole from
the moment the process starts; ``mlflow.projects.run`` then fills it in.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

import mlflow
from mlflow.entities import RunStatus
from mlflow.exceptions import ExecutionException
from mlflow.projects.utils import MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG
from mlflow.tracking import MlflowClient

from psystock.names import TAG_ERROR

_RUNNING = RunStatus.to_string(RunStatus.RUNNING)
_FAILED = RunStatus.to_string(RunStatus.FAILED)


@dataclass(frozen=True)
class Launch:
    """An entry point to run: which project (a folder, or a Git URL at ``version``), with what,
    where it logs, and the run to create for it."""

    uri: str
    entry_point: str
    parameters: dict[str, str]
    experiment_id: str
    tracking_uri: str
    run_name: str
    tags: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    env_manager: str = "local"
    backend: str = "local"  # MLflow's, or a plugin's (psystock-forkserver: steps forked warm)


@dataclass(frozen=True)
class Launched:
    """How a launch ended: its run, whether the entry point succeeded, its wall time, and its error
    line (the step's own, as ``run_step`` tagged it) if it failed."""

    run_id: str
    ok: bool
    seconds: float
    error: str = ""


def create_run(spec: Launch) -> str:
    """The run ``spec`` will fill in, with its tags (parent, names, cache keys)."""
    run = MlflowClient(spec.tracking_uri).create_run(spec.experiment_id, tags=spec.tags, run_name=spec.run_name)
    run_id: str = run.info.run_id
    return run_id


def launch(spec: Launch, run_id: str | None = None) -> Launched:
    """Run ``spec``'s entry point to its end in the run ``run_id`` (created now if not given).

    A failed entry point is a result, not an exception: its run is marked
    FAILED (it stays RUNNING if the process died before saying so) and its
    error line comes back. Anything else -- a tracking server that cannot be
    reached, a project that cannot be fetched -- raises.
    """
    run_id = run_id or create_run(spec)
    started = time.perf_counter()
    try:
        mlflow.projects.run(
            spec.uri,
            entry_point=spec.entry_point,
            version=spec.version,
            parameters=spec.parameters,
            experiment_id=spec.experiment_id,
            run_id=run_id,
            env_manager=spec.env_manager,
            synchronous=True,
            backend=spec.backend,
            # MLflow hands a plugin backend the run to fill in through its configuration only.
            backend_config=None if spec.backend == "local" else {MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG: run_id},
        )
    except ExecutionException as exc:
        seconds = time.perf_counter() - started
        client = MlflowClient(spec.tracking_uri)
        run = client.get_run(run_id)
        if run.info.status == _RUNNING:
            client.set_terminated(run_id, _FAILED)
        error = run.data.tags.get(TAG_ERROR) or str(exc).strip().splitlines()[0]
        return Launched(run_id, False, seconds, error)
    return Launched(run_id, True, time.perf_counter() - started)


def launch_anywhere(spec: Launch) -> Launched:
    """:func:`launch` as a Spark task runs it: against ``spec.tracking_uri``, and never raising,
    so Spark neither retries a pipeline nor loses the others' results to one failure."""
    os.environ["MLFLOW_TRACKING_URI"] = spec.tracking_uri
    mlflow.set_tracking_uri(spec.tracking_uri)
    # `python` in an entry point's command (env_manager=local) is the worker's own interpreter.
    here = os.path.dirname(sys.executable)
    if not os.environ.get("PATH", "").startswith(here + os.pathsep):
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")
    run_id = ""
    started = time.perf_counter()
    try:
        run_id = create_run(spec)
        return launch(spec, run_id)
    except Exception as exc:  # reported with the task's result: one line, on the driver
        if run_id:
            with contextlib.suppress(Exception):  # the tracking server itself is gone: the run stays RUNNING
                MlflowClient(spec.tracking_uri).set_terminated(run_id, _FAILED)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f" on {os.uname().nodename} ({sys.executable})"
        return Launched(run_id, False, time.perf_counter() - started, f"{type(exc).__name__}: {first}{where}")
