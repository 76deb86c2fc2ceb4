"""Tracking stores in temporary folders, and entry points run as real processes.

``mlflow_run`` goes through the real ``mlflow run`` command (MLflow's click CLI, forked warm:
:mod:`tests.helpers.warm_cli`); ``make_run`` through ``make run`` and the ``mlflow`` executable;
``step_run`` runs a step's module as the entry point's command would, skipping the CLI
where a test is about the step itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from psystock import names
from tests.helpers import warm_cli
from tests.helpers.services import mlflow_run_command

PROJECT = Path(__file__).resolve().parent.parent.parent
FIXTURES = PROJECT / "tests" / "fixtures"
BTC_CSV = FIXTURES / "BTC-USD.csv"


@dataclass
class Store:
    """A throw-away tracking store: SQLite file, artifacts in the same temp folder (or a server's URL)."""

    uri: str
    root: Path
    experiment_id: str

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MLFLOW_TRACKING_URI"] = self.uri
        # The `python` of every entry point must be this interpreter.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        return env


@contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI pointed at ``uri`` until the block ends; then, as they were,
    the URI, the active experiment and the variables MLflow sets for its subprocesses with
    them (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_ID``): a test after this one sees none of
    it, whatever order the tests run in."""
    from mlflow.tracking import fluent

    variables = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")
    previous = {name: os.environ.get(name) for name in variables}
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        # None is MLflow's own "unset": the URI comes from the environment again.
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        fluent._active_experiment_id = None
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def make_store(root: Path, experiment: str = "psystock-test") -> Store:
    uri = f"sqlite:///{root}/mlflow.db"
    experiment_id = MlflowClient(uri).create_experiment(experiment, artifact_location=str(root / "artifacts"))
    return Store(uri, root, experiment_id)


def small_pipeline(source: Path | str = BTC_CSV, **changes: object) -> dict[str, object]:
    """main's parameters for tests: two years of the real data (a CSV, or ``store``: the same bars
    from the price store, which they seed), short Keras and tuning.

    ``min_improvement=1`` makes the registry gate refuse every model, so the
    shared store never gets a champion and ``predict`` never runs: the
    registered path is tested on its own in test_steps.
    """
    return {
        "source": source,
        "start": "2019-01-01",
        "keras_epochs": 1,
        "max_evals": 2,
        "cv_folds": 2,
        "min_improvement": 1,
    } | changes


@dataclass
class ProjectRun:
    returncode: int
    stdout: str
    stderr: str
    run_id: str  # the run the entry point ran in; empty if it never started one

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        """The lines a step printed as its error (``<step>: error: ...``)."""
        return [line for line in self.stderr.splitlines() if re.match(r"^[a-z_]+: error: ", line)]


def project_command(
    store: Store,
    entry_point: str,
    params: Mapping[str, object],
    project: Path | str = PROJECT,
    env_manager: str = "local",
) -> list[str]:
    """``mlflow run <project> -e <entry_point> --env-manager <env_manager> -P ...`` into ``store``."""
    return mlflow_run_command(project, entry_point, store.experiment_id, params, env_manager)


def step_run(
    store: Store,
    entry_point: str,
    params: Mapping[str, object],
    timeout: int = 600,
    env: dict[str, str] | None = None,
    patch: str = "",
) -> ProjectRun:
    """Run a step's module as MLflow's command would (``python -m steps.<name>``), forked warm as
    ``main`` forks its steps (:func:`tests.helpers.warm_cli.step`); given a ``PYTHONPATH``, which
    only an interpreter's start applies, as a new interpreter.

    The step creates and ends its own run. ``patch`` is code run first in the
    step's process, e.g. to stand in for Yahoo.
    """
    from psystock.forking import preload_of

    module = f"steps.{entry_point}"
    args = [part for name, value in params.items() for part in (f"--{name}", str(value))]
    env = store.env() | {"MLFLOW_EXPERIMENT_ID": store.experiment_id} | (env or {})
    if "PYTHONPATH" not in env:
        preload = preload_of(entry_point, {name: str(value) for name, value in params.items()})
        done = warm_cli.step(preload, module, args, env, PROJECT, timeout, patch)
    else:
        command = [sys.executable, "-m", module, *args]
        if patch:
            command[1:3] = ["-c", f"{patch}\nimport runpy\nrunpy.run_module({module!r}, run_name='__main__')"]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=PROJECT)
    match = re.search(rf"{entry_point}: run ([0-9a-f]+) ", done.stderr)
    return ProjectRun(done.returncode, done.stdout, done.stderr, match.group(1) if match else "")


def make_run(
    store: Store,
    experiment: str,
    params: Mapping[str, object],
    timeout: int = 900,
    env: Mapping[str, str] | None = None,
) -> ProjectRun:
    """``make run`` as a user types it: ``DATA`` for a CSV source (none for the price store), the
    rest as ``ARGS="-P ..."``, into the experiment named ``experiment`` of ``store`` (``env``: extra
    variables)."""
    rest = {name: value for name, value in params.items() if name != "source"}
    data = [] if params["source"] == names.STORE else [f"DATA={params['source']}"]
    command = [
        "make",
        "--no-print-directory",
        "run",
        *data,
        f"EXPERIMENT={experiment}",
        f"TRACKING_URI={store.uri}",
        "ARGS=" + " ".join(f"-P {name}={value}" for name, value in rest.items()),
    ]
    variables = store.env() | dict(env or {})
    done = subprocess.run(command, capture_output=True, text=True, env=variables, timeout=timeout, cwd=PROJECT)
    match = re.search(r"in run with ID '([0-9a-f]+)'", done.stderr)
    return ProjectRun(done.returncode, done.stdout, done.stderr, match.group(1) if match else "")


def mlflow_run(
    store: Store,
    entry_point: str,
    params: Mapping[str, object],
    timeout: int = 600,
    project: Path | str = PROJECT,
    env: dict[str, str] | None = None,
    extra_args: list[str] | tuple[str, ...] = (),
    env_manager: str = "local",
) -> ProjectRun:
    """Run an entry point through the real ``mlflow run`` and wait for it (``env``: extra variables,
    ``extra_args``: more options of ``mlflow run``, e.g. ``--version``): MLflow's own command in a
    process of its own, forked warm (:mod:`tests.helpers.warm_cli`)."""
    command = project_command(store, entry_point, params, project, env_manager) + list(extra_args)
    done = warm_cli.run(command[1:], store.env() | (env or {}), store.root, timeout)
    match = re.search(r"in run with ID '([0-9a-f]+)'", done.stderr)
    return ProjectRun(done.returncode, done.stdout, done.stderr, match.group(1) if match else "")


def finished(result: ProjectRun) -> Run:
    """The run of an entry point that must have succeeded: FINISHED, or the output in the failure."""
    assert result.returncode == 0, result.output[-3000:]
    run = MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    return run


def artifacts(run_id: str, path: str = "") -> set[str]:
    """The artifact paths directly under ``path`` of a run."""
    return {a.path for a in MlflowClient().list_artifacts(run_id, path)}


def write_plugin(folder: Path, distribution: str, entry_points: Mapping[str, str]) -> Path:
    """An installed distribution in ``folder`` (its ``.dist-info``, as pip writes one) that declares
    ``entry_points`` (family name -> ``module:object``) in the ``psystock.families`` group:
    put ``folder`` on ``sys.path`` or ``PYTHONPATH`` and psystock finds them."""
    from psystock.models import PLUGIN_GROUP

    info = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\n{lines}")
    return folder
