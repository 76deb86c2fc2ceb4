"""An MLflow project backend that starts each step warm: forked from a server that has already
imported MLflow, pandas and scikit-learn (:mod:`psystock.forking`).

Registered as ``psystock-forkserver`` in the ``mlflow.project_backend`` entry-point group and
chosen by ``mlflow.projects.run(backend=...)``. A step is still an MLflow Project run of its
entry point, in a process of its own with its own run: MLflow resolves the project, creates or
takes the run and computes the entry point's command as it does for its local backend; then,
instead of a new interpreter for ``python -m steps.<name> ...``, a process forked from one of
the driver's servers runs that module: the server that also preloads the step's family's
framework, if it names one (``train_<family>``, or any entry point given ``family=<family>``).
A server only imports libraries, so every step starts from the same state: a fresh environment
(the driver's at launch, with the run's MLflow variables), the project folder as its working
directory, no active run, no logging handlers. The driver lends its servers to what it forks: an
entry point that is itself a driver (a universe's ``main``) forks its steps from them too.

Anything but the ``local`` environment manager, or a command that is not ``python -m``, goes to
MLflow's own local backend.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import tempfile
from typing import Any

from mlflow.entities import RunStatus
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.backend.local import LocalBackend
from mlflow.projects.submitted_run import SubmittedRun
from mlflow.projects.utils import (
    MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG,
    PROJECT_ENV_MANAGER,
    PROJECT_STORAGE_DIR,
    fetch_and_validate_project,
    get_or_create_run,
    get_run_env_vars,
    load_project,
)
from mlflow.tracking import MlflowClient

from psystock.forking import STREAMS, Inherited, StepProcess, lent_servers, preload_of, run_module
from psystock.mlflow_io.lifecycle import end_children
from psystock.names import TAG_ERROR

# The steps this process forked that it has not seen end: each one's process id, and the id of the
# process that forked it (a process forked from this one inherits the table, not those steps).
_waited_for: dict[int, int] = {}
# The stop signal each step this process forked was sent, by its pid.
_told_to_stop: dict[int, int] = {}


def signal_steps(signum: int) -> None:
    """Send ``signum`` to every step this process forked and waits for: a driver told to stop
    passes it on to its steps, which stop and end their runs (``kill`` of the driver alone, or
    MLflow cancelling its run, reaches none of them)."""
    for pid, owner in list(_waited_for.items()):
        if owner == os.getpid():
            _told_to_stop.setdefault(pid, signum)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


class ForkedRun(SubmittedRun):
    def __init__(self, run_id: str, process: Any, entry_point: str, tracking_uri: str):
        self._run_id = run_id
        self.process = process
        self.entry_point, self.tracking_uri = entry_point, tracking_uri
        _waited_for[process.pid] = os.getpid()

    @property
    def run_id(self) -> str:
        return self._run_id

    def wait(self) -> bool:
        self.process.join()
        _waited_for.pop(self.process.pid, None)
        stop = _told_to_stop.pop(self.process.pid, None)
        if self.process.exitcode != 0:
            self._say_how_it_ended(stop)
        return bool(self.process.exitcode == 0)

    def _say_how_it_ended(self, stop: int | None) -> None:
        """A step that failed without its error line (killed, or crashed in the interpreter) gets
        one on its run saying how its process ended, and first, if its driver had stopped it, by
        what (TensorFlow, stopped in the middle of its work, can abort the process)."""
        code = self.process.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        why = f"its process {self.process.pid} {how}"
        if stop is not None:  # exiting as the stop asks, it had said so, unless it had not yet begun its run
            stopped = f"stopped by {signal.Signals(stop).name}"
            why = stopped if code == 128 + stop else f"{stopped}, then {why}"
        client = MlflowClient(self.tracking_uri)
        if TAG_ERROR not in client.get_run(self._run_id).data.tags:
            client.set_tag(self._run_id, TAG_ERROR, f"{self.entry_point}: {why}")
        end_children(self._run_id, f"{self.entry_point}: {why}", self.tracking_uri)

    def get_status(self) -> str:
        if self.process.exitcode is None:
            return str(RunStatus.to_string(RunStatus.RUNNING))
        return str(RunStatus.to_string(RunStatus.FINISHED if self.process.exitcode == 0 else RunStatus.FAILED))

    def cancel(self) -> None:
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()


class ForkserverBackend(AbstractBackend):
    def run(
        self,
        project_uri: str,
        entry_point: str,
        params: dict[str, Any],
        version: str | None,
        backend_config: dict[str, Any],
        tracking_uri: str,
        experiment_id: str,
    ) -> SubmittedRun:
        if backend_config.get(PROJECT_ENV_MANAGER) not in (None, "local"):
            return _local(project_uri, entry_point, params, version, backend_config, tracking_uri, experiment_id)
        work_dir = fetch_and_validate_project(project_uri, version, entry_point, params)
        project = load_project(work_dir)
        command = shlex.split(_command(project, entry_point, params, backend_config.get(PROJECT_STORAGE_DIR)))
        if command[:2] != ["python", "-m"] or len(command) < 3:
            return _local(project_uri, entry_point, params, version, backend_config, tracking_uri, experiment_id)
        run = get_or_create_run(
            backend_config.get(MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG),
            project_uri,
            experiment_id,
            work_dir,
            version,
            entry_point,
            params,
        )
        env = {
            **os.environ,
            **get_run_env_vars(run.info.run_id, experiment_id),
            "MLFLOW_TRACKING_URI": tracking_uri,
            **lent_servers(),  # a forked driver (a universe's main) forks its own steps from them too
        }
        process = StepProcess(
            preload_of(entry_point, params),
            target=run_module,
            # This process's standard streams, as MLflow's local backend hands them to a new interpreter.
            args=(work_dir, command[2], command[3:], env, Inherited(STREAMS)),
            name=f"step {entry_point}",
        )
        process.start()
        return ForkedRun(run.info.run_id, process, entry_point, tracking_uri)


def _command(project: Any, entry_point: str, params: dict[str, Any], storage_dir: str | None) -> str:
    """The entry point's command line, as MLflow's local backend computes it. MLflow downloads the
    remote files that ``path`` parameters name into a new directory for each run; where none was
    downloaded (psystock's entry points have no such parameter), the directory is removed again,
    so that a pipeline leaves no empty directory behind for each step."""
    if storage_dir:
        os.makedirs(storage_dir, exist_ok=True)
    downloads = tempfile.mkdtemp(dir=storage_dir)
    try:
        command: str = project.get_entry_point(entry_point).compute_command(params, downloads)
    finally:
        with contextlib.suppress(OSError):  # not empty: a step's downloaded input
            os.rmdir(downloads)
    return command


def _local(*args: Any) -> SubmittedRun:
    submitted: SubmittedRun = LocalBackend().run(*args)
    return submitted


def backend() -> ForkserverBackend:
    """The entry point MLflow's backend loader calls."""
    return ForkserverBackend()
