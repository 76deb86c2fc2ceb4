"""Runs whose process ended unseen: told apart from live ones, and closed by the next main."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

import mlflow
import pytest
import sqlalchemy
import sqlalchemy.orm
from mlflow.entities import Run
from mlflow.environment_variables import MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS
from mlflow.store.tracking.dbmodels.models import SqlRun
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import names, process_ended, this_process
from psystock.mlflow_io import lifecycle
from psystock.mlflow_io.lifecycle import DATABASE_PATIENCE, end_stopped, end_unseen_runs, prompt_async_logging, run_step
from steps import fetch_data


def ended_pid() -> str:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return done.stdout.strip()


def test_a_process_has_ended_when_it_is_gone_or_a_zombie_and_only_on_this_host():
    assert not process_ended(this_process())
    pid = ended_pid()
    assert process_ended(f"{socket.gethostname()}:{pid}")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while not process_ended(f"{socket.gethostname()}:{zombie.pid}") and time.time() < deadline:
        time.sleep(0.05)  # it exits, and nobody has reaped it yet
    assert process_ended(f"{socket.gethostname()}:{zombie.pid}")
    zombie.wait()
    assert not process_ended(f"another-host:{pid}")
    assert not process_ended("") and not process_ended("host:not-a-pid")


def test_only_the_running_runs_of_ended_processes_are_marked_killed(store):
    client = MlflowClient()
    gone = f"{socket.gethostname()}:{ended_pid()}"
    runs = {
        "orphan": {names.TAG_PROCESS: gone},
        "alive": {names.TAG_PROCESS: this_process()},
        "elsewhere": {names.TAG_PROCESS: "another-host:1"},
        "untagged": {},
    }
    ids = {
        name: client.create_run(store.experiment_id, tags=tags, run_name=name).info.run_id
        for name, tags in runs.items()
    }
    done = client.create_run(store.experiment_id, tags={names.TAG_PROCESS: gone}, run_name="done").info.run_id
    client.set_terminated(done, "FINISHED")

    assert end_unseen_runs(store.experiment_id) == [ids["orphan"]]
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"orphan": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING", "untagged": "RUNNING"}
    assert (
        client.get_run(ids["orphan"]).data.tags[names.TAG_ENDED_UNSEEN] == f"process {gone} ended with the run RUNNING"
    )
    assert client.get_run(done).info.status == "FINISHED"
    assert end_unseen_runs(store.experiment_id) == []  # once


def test_main_forks_its_steps_warm_only_where_they_run_here_in_its_own_environment():
    from psystock.pipeline import Step, StepRunner

    def spec(**runner):
        return StepRunner("1", "parent", **runner)._spec(Step("compare", {}), {})

    warm = spec(launcher=names.FORKSERVER)
    assert (warm.backend, warm.tags[names.TAG_LAUNCHER]) == (names.FORKSERVER_BACKEND, names.FORKSERVER)
    for cold in (
        spec(launcher=names.SUBPROCESS),
        spec(launcher=names.FORKSERVER, env_manager="uv"),  # another interpreter: a new process
        spec(launcher=names.FORKSERVER, remote=lambda launches: []),  # a Spark task elsewhere
    ):
        assert (cold.backend, cold.tags[names.TAG_LAUNCHER]) == ("local", names.SUBPROCESS)


def test_main_refuses_a_launcher_it_does_not_know():
    import pytest

    from psystock import PsystockError
    from psystock.pipeline import MainArgs, check_settings

    with pytest.raises(PsystockError, match="launcher must be forkserver or subprocess, got 'threads'"):
        check_settings(MainArgs(launcher="threads"))


def test_mains_description_is_its_verdict_then_where_its_report_is():
    note = names.pipeline_note("On the holdout ... nothing registered.", "abc123")
    assert note == "On the holdout ... nothing registered.\n\nThe report: runs:/abc123/report/report.html"


def test_a_run_ends_once_its_queued_metrics_are_written_not_at_the_queues_next_poll(store, monkeypatch):
    monkeypatch.setenv(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.name, "")
    monkeypatch.delenv(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.name)  # restored as unset afterwards
    prompt_async_logging()
    with mlflow.start_run(experiment_id=store.experiment_id) as run:
        for step in range(5):  # as autologging logs each epoch's
            mlflow.log_metric("loss", 1 / (step + 1), step=step, synchronous=False)
        time.sleep(0.2)  # the queue's thread has had them; unbuffered, it now blocks for a second
        ending = time.perf_counter()
    ended_in = time.perf_counter() - ending
    assert [m.step for m in MlflowClient().get_metric_history(run.info.run_id, "loss")] == list(range(5))
    assert ended_in < 0.5, ended_in


def test_a_buffering_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.name, "3")
    prompt_async_logging()
    assert MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.get() == 3


STOPS = (signal.SIGINT, signal.SIGTERM)


def test_a_step_run_records_the_cpu_its_process_spent_up_to_the_end_of_its_work(store, monkeypatch):
    """cpu_seconds: the step's process's CPU time when its work ended (a new process's from its start,
    a forked step's from its fork), where the benchmarks read what each step costs the machine."""
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", store.experiment_id)

    def work(_args: fetch_data.Args) -> None:
        busy_until = time.process_time() + 0.3
        while time.process_time() < busy_until:
            pass

    before = time.process_time()
    run_step(fetch_data.Args, work, argv=["--ticker", "SPY"])
    after = time.process_time()
    gc.unfreeze()
    run = _latest_run(store)
    assert run.info.status == "FINISHED"
    assert before + 0.3 <= run.data.metrics[names.CPU_SECONDS] <= after


def _let_through(received: int, _frame: object) -> None:
    raise AssertionError(f"the step let {signal.Signals(received).name} through")


@pytest.fixture
def step_in_this_process(store, monkeypatch):
    """Run a step here, in the store's experiment, and return how it exited. Until run_step takes
    them over, SIGINT and SIGTERM fail the test instead of ending pytest."""
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", store.experiment_id)
    before = {stop: signal.signal(stop, _let_through) for stop in STOPS}

    def run(work: Callable[[fetch_data.Args], None]) -> int | str | None:
        with pytest.raises(SystemExit) as exited:
            run_step(fetch_data.Args, work, argv=["--ticker", "SPY"])
        gc.unfreeze()
        # This process's handlers are as they were before the step.
        assert all(signal.getsignal(stop) is _let_through for stop in STOPS)
        return exited.value.code

    yield run
    for stop, handler in before.items():
        signal.signal(stop, handler)


def _latest_run(store) -> Run:
    run: Run = MlflowClient().search_runs([store.experiment_id], order_by=["attributes.start_time DESC"])[0]
    return run


@pytest.mark.parametrize("wrapped", [False, True], ids=["python", "inside-a-library"])
@pytest.mark.parametrize("signum", STOPS)
def test_a_step_told_to_stop_ends_its_run_saying_by_what_and_exits_as_that_signal_would(
    store, step_in_this_process, signum, wrapped, capsys
):
    """Ctrl-C (SIGINT) or SIGTERM in the middle of a step's work: one line, its run FAILED with the
    signal named, the exit status a shell reports for it; a second signal meanwhile changes nothing.
    The same when the stop comes out of a library as another error (TensorFlow's bindings make a
    RuntimeError of an exception raised while they call back into Python)."""
    stopped_at: list[str] = []

    def work(_args: fetch_data.Args) -> None:
        mlflow.log_param("began", "yes")
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the signal's handler raises before this ends
        except KeyboardInterrupt:
            if not wrapped:
                raise
            raise RuntimeError("pybind11::error_already_set: MISMATCH of original and normalized") from None
        finally:
            stopped_at.append("work")
            os.kill(os.getpid(), signal.SIGTERM)  # ignored: the first signal is being dealt with

    assert step_in_this_process(work) == 128 + signum and stopped_at == ["work"]
    name = signal.Signals(signum).name
    assert capsys.readouterr().err.splitlines()[-1] == f"fetch_data: stopped by {name}"
    run = _latest_run(store)
    assert run.info.status == "FAILED" and run.data.params["began"] == "yes"
    assert run.data.tags[names.TAG_ERROR] == f"fetch_data: stopped by {name}"


def test_a_step_stopped_just_as_it_began_child_runs_ends_them_with_its_own(store, step_in_this_process):
    """A stop that comes as a step begins a child run (a baseline's, a trial's), before the block
    that would end it: one begun and made active, one only created. Each ends FAILED with the
    step's run, saying what stopped it; the step's own run does too."""
    children: list[str] = []

    def work(_args: fetch_data.Args) -> None:
        parent = mlflow.active_run()
        assert parent is not None
        created = MlflowClient().create_run(store.experiment_id, tags={MLFLOW_PARENT_RUN_ID: parent.info.run_id})
        children.extend([created.info.run_id, mlflow.start_run(nested=True).info.run_id])
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    assert step_in_this_process(work) == 128 + signal.SIGTERM
    assert mlflow.active_run() is None
    client = MlflowClient()
    for run_id in children:
        child = client.get_run(run_id)
        assert child.info.status == "FAILED"
        assert child.data.tags[names.TAG_ERROR] == "fetch_data: stopped by SIGTERM"
    step = client.get_run(client.get_run(children[0]).data.tags[MLFLOW_PARENT_RUN_ID])
    assert step.info.status == "FAILED" and step.data.tags[names.TAG_ERROR] == "fetch_data: stopped by SIGTERM"


def test_a_step_stopped_while_reading_a_sqlite_store_lets_the_file_go_before_ending_its_run(
    store, step_in_this_process
):
    """A SQLite store half read when the signal came stays locked against every writer, in every
    process, for as long as the reader lives; kept alive by the traceback, it made the step's own
    ending wait out MLflow's 20 s busy timeout and fail."""

    def work(_args: fetch_data.Args) -> None:
        reading = sqlite3.connect(store.root / "mlflow.db").execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 1000)"
            " SELECT i, (SELECT count(*) FROM runs) FROM n"
        )
        reading.fetchone()  # under way: the file is locked against writers until it is let go
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    started = time.monotonic()
    assert step_in_this_process(work) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 10
    run = _latest_run(store)
    assert run.info.status == "FAILED"
    assert run.data.tags[names.TAG_ERROR] == "fetch_data: stopped by SIGTERM"


def test_a_stop_that_came_while_python_ran_a_finalizer_still_stops_the_step(store, step_in_this_process, capsys):
    """Python prints and ignores what a finalizer (a weak reference's callback, a ``__del__``)
    raises: a stop that came while one ran was lost, and the step ran on to its end, FINISHED."""

    class Dropped:
        pass

    def finalizer(_gone: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal's handler raises here, inside the finalizer

    def work(_args: fetch_data.Args) -> None:
        dropped = Dropped()
        kept = weakref.ref(dropped, finalizer)
        del dropped  # the callback runs now
        time.sleep(10)  # the stop is raised again here
        mlflow.log_param("ran_on", kept() is None)

    started = time.monotonic()
    assert step_in_this_process(work) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 8
    said = capsys.readouterr().err
    assert said.splitlines()[-1] == "fetch_data: stopped by SIGTERM" and "Traceback" not in said, said
    run = _latest_run(store)
    assert run.info.status == "FAILED" and "ran_on" not in run.data.params


class _SlowRead(sqlite3.Cursor):
    """A cursor whose read takes a second, and the stop signal comes in the middle of it."""

    def fetchall(self) -> list[Any]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        return super().fetchall()


class _Connection(sqlite3.Connection):
    """Every cursor it makes, whatever was asked, reads slowly."""

    def cursor(self, *_args: Any, **_kwargs: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return _SlowRead(self)


@pytest.mark.parametrize("patience", [DATABASE_PATIENCE, 0.2], ids=["waited-for", "outlasting-the-patience"])
def test_a_step_stopped_in_the_middle_of_a_sqlalchemy_read_ends_its_run_and_says_one_line(
    store, step_in_this_process, caplog, capsys, monkeypatch, patience
):
    """MLflow's SQL stores read through SQLAlchemy. A stop raised in the middle of a read closed
    the connection under its cursor: the pool logged, with a traceback, that it could not close
    the cursor, and the cursor, kept by SQLAlchemy's result in a closure of the traceback's
    frames, kept the SQLite file locked against the step's own ending (its run stayed RUNNING).
    The stop now waits for the read to return; one that outlasts its patience is raised inside
    it, and still ends the run with one line."""
    monkeypatch.setattr(lifecycle, "DATABASE_PATIENCE", patience)
    read: list[int] = []

    def work(_args: fetch_data.Args) -> None:
        engine = sqlalchemy.create_engine(store.uri, connect_args={"factory": _Connection})
        with sqlalchemy.orm.Session(engine) as session:
            read.append(len(session.query(SqlRun).all()))
        time.sleep(5)

    started = time.monotonic()
    assert step_in_this_process(work) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 5
    assert read == ([1] if patience == DATABASE_PATIENCE else [])  # the step's own run, read whole
    assert capsys.readouterr().err.splitlines()[-1] == "fetch_data: stopped by SIGTERM"
    assert not [record.getMessage() for record in caplog.records if record.name.startswith("sqlalchemy")]
    assert _latest_run(store).info.status == "FAILED"


def test_a_step_stopped_before_it_began_has_its_run_ended_by_its_driver_and_a_finished_one_is_left(store):
    client = MlflowClient()
    waiting = client.create_run(store.experiment_id).info.run_id
    done = client.create_run(store.experiment_id).info.run_id
    client.set_terminated(done, "FINISHED")
    for run_id in (waiting, done):
        end_stopped(run_id, "tune: stopped by SIGTERM before it began")
    assert client.get_run(waiting).info.status == "FAILED"
    assert client.get_run(waiting).data.tags[names.TAG_ERROR] == "tune: stopped by SIGTERM before it began"
    assert client.get_run(done).info.status == "FINISHED" and names.TAG_ERROR not in client.get_run(done).data.tags
