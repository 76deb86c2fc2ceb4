"""Runs from birth to end: a step process's own run, the step runs main creates, links and failures.

A step file is ``run_step(Args, body)``: the body receives the parsed, typed
arguments inside an active MLflow run. A :class:`PsystockError` (bad input)
ends the step with one line on stderr, exit status 2 and the run marked
FAILED; a tracking server that cannot be reached, with exit status 3. SIGINT
(Ctrl-C) or SIGTERM (``kill``, a scheduler, MLflow cancelling the run) stops it
with one line, the run marked FAILED with its error tag naming the signal, and
the exit status a shell gives a process killed by that signal (130, 143).

``run_step`` is a step process's last act: once the run is recorded it freezes
the garbage collector, so the interpreter's exit does not walk every object
MLflow, pandas and TensorFlow built (about 1 s per step process, most of a
cached ``main``'s tail). The OS frees the memory; exit handlers still run.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import mlflow
from mlflow.entities import Param, Run, RunStatus
from mlflow.environment_variables import MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS
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

from psystock import PsystockError, forked_from, names, process_ended, this_process
from psystock.entry_points import A, parse_args

log = logging.getLogger("psystock")

FINISHED = RunStatus.to_string(RunStatus.FINISHED)
FAILED = RunStatus.to_string(RunStatus.FAILED)
RUNNING = RunStatus.to_string(RunStatus.RUNNING)
KILLED = RunStatus.to_string(RunStatus.KILLED)


LOG_CONTEXT = "PSYSTOCK_LOG_CONTEXT"  # the ticker a pipeline's step processes name in their log lines


def configure_logging(entry_point: str = "", context: str = "") -> None:
    """One timestamped line per message, naming the step and its ticker (steps and pipelines run
    side by side write into one log); quiet the libraries that narrate their internals."""
    # Per-file download bars drown the step's own lines in logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # On a tracking server, MLflow prints a run's links whenever a client ends it, after asking the
    # server for the run once more: the `mlflow` command that started a step prints them as the
    # step ends, and the step's own end (and a pipeline's end of each step it ran) would again.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    context = context or os.environ.get(LOG_CONTEXT, "")
    where = f"[{' '.join(filter(None, [context, entry_point]))}] " if entry_point or context else ""
    logging.basicConfig(
        level=os.environ.get("PSYSTOCK_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {where}%(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # hyperopt reports its internals at INFO and py4j each connection it closes;
    # psystock reports each trial itself. MLflow announces each run a driver launched as it
    # succeeds, which the driver reports itself, with its time (a failure still shows).
    for name in ("hyperopt", "hyperopt-spark", "py4j", "mlflow.projects"):
        logging.getLogger(name).setLevel(logging.WARNING)


def prompt_async_logging() -> None:
    """Let a run end as soon as its queued metrics are written. Autologging queues them (MLflow's
    async logging); unbuffered, the queue's thread blocks up to a second on its empty queue, and
    the end of the run waits for it. Buffered, it waits on the run's end itself, and writes what
    each second brought as one batch. A value the user set is kept."""
    os.environ.setdefault(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.name, "1")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop signal received by a step or a driver: what it is doing stops, and its run ends.

    A KeyboardInterrupt, whatever the signal: no ``except Exception`` on the way takes it for an
    error, and code written to stop on Ctrl-C stops on it (a Keras step went on training past a
    plain BaseException raised inside it).
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


# The stop signal this process received while a step ran, if it did.
_received: list[int] = []

# A stop raised in the middle of a read through SQLAlchemy (one that outlasted DATABASE_PATIENCE)
# leaves the connection closed under its cursor, and the pool logs, with a traceback, that it could
# not close the cursor.
_CUT_SHORT = logging.getLogger("sqlalchemy.pool")

# While a step runs (set), and since when a stop has waited for a database call to return.
_running = threading.Event()
_waiting_since: list[float] = []
# How long a stop waits for a call into a SQL store to return before it is raised inside it.
DATABASE_PATIENCE = 30.0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Inside a call into a SQL store (SQLAlchemy: MLflow's SQLite or PostgreSQL store), a stop
    # would leave a connection half closed, a transaction half done, a SQLite file locked against
    # the step's own ending: it waits for the call to return, signalled again every 50 ms.
    if _in_database_call(frame):
        if not _waiting_since:
            _waiting_since.append(time.monotonic())
        if time.monotonic() - _waiting_since[0] < DATABASE_PATIENCE:
            _signal_again(signum)
            return
    # Once: what the first signal stops is then ended and recorded, which a second one (MLflow's
    # SIGTERM after Ctrl-C's SIGINT, say) must not cut short. SIGKILL still ends it at once.
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    _received.append(signum)
    _CUT_SHORT.setLevel(logging.CRITICAL)  # the stop's own line says what happened
    raise Interrupted(signum)


def _in_database_call(frame: FrameType | None) -> bool:
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith("sqlalchemy."):
            return True
        frame = frame.f_back
    return False


def _signal_again(signum: int) -> None:
    """Send ``signum`` to the main thread again in 50 ms, if a step still runs then."""

    def later() -> None:
        time.sleep(0.05)
        if _running.is_set():
            signal.pthread_kill(threading.main_thread().ident or 0, signum)

    threading.Thread(target=later, daemon=True).start()


def stop_received() -> int | None:
    """The stop signal this process received while a step ran, if it did."""
    return _received[0] if _received else None


def stop_behind(error: BaseException) -> Interrupted | None:
    """The stop that ``error`` stands for: an :class:`Interrupted`, or whatever a library made of one
    raised inside it (TensorFlow's C++ bindings turn it into a RuntimeError); None for an error."""
    if isinstance(error, Interrupted):
        return error
    return Interrupted(_received[0]) if _received else None


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while the block runs (Python hands signals to
    the main thread only: in another thread this does nothing); then the handlers are as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {stop: signal.getsignal(stop) for stop in STOP_SIGNALS}
    pool_level = _CUT_SHORT.level
    unraisable_before = sys.unraisablehook

    def raise_again(unraisable: Any) -> None:
        # A stop that came while Python ran a finalizer (a weak reference's callback, a __del__:
        # Keras and TensorFlow have many) was printed and ignored there, as whatever such code
        # raises is, and the step ran on to its end. It is raised again in the code that runs next.
        stop = unraisable.exc_value
        if not isinstance(stop, Interrupted) or threading.current_thread() is not threading.main_thread():
            unraisable_before(unraisable)
            return
        for signum in STOP_SIGNALS:
            signal.signal(signum, _interrupt)
        _signal_again(stop.signum)

    _received.clear()
    _waiting_since.clear()
    for stop in STOP_SIGNALS:
        signal.signal(stop, _interrupt)
    sys.unraisablehook = raise_again
    _running.set()
    try:
        yield
    finally:
        _running.clear()
        sys.unraisablehook = unraisable_before
        for stop, handler in before.items():
            signal.signal(stop, handler)
        _CUT_SHORT.setLevel(pool_level)


def run_step(
    args_type: type[A],
    body: Callable[[A], None],
    run_name: str | Callable[[A], str] | None = None,
    argv: list[str] | None = None,
) -> None:
    """Run ``body`` for an entry point inside an MLflow run; exit non-zero on bad input.

    ``run_name`` may depend on the arguments (the generic ``train`` names its run after the
    family it trains); it is computed inside the run, so an error there fails the run.

    A step run as its process's command (``argv`` None: ``python -m steps.<step>``, new or
    forked), once stopped, has ended its run and said so; it then leaves as the signal would
    have ended it, without waiting on the threads, or the teardown, of the work it stopped (a
    thread that never ends would keep the process alive, and the pipeline waiting for it). A
    new interpreter still runs its exit functions: a driver's end its steps' servers."""
    try:
        _step(args_type, body, run_name, argv)
    except SystemExit as exit_:
        if argv is not None or stop_received() is None:
            raise
        if not forked_from():  # a forked process never runs them: its server registered them
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(exit_.code if isinstance(exit_.code, int) else 1)


def _step(
    args_type: type[A],
    body: Callable[[A], None],
    run_name: str | Callable[[A], str] | None,
    argv: list[str] | None,
) -> None:
    entry_point = args_type.entry_point
    args, raw = parse_args(args_type, argv)
    configure_logging(entry_point, str(getattr(args, "ticker", "")))
    prompt_async_logging()
    name: Callable[[], str | None] = (lambda: run_name(args)) if callable(run_name) else (lambda: run_name)
    try:
        with stopped_by_signals():
            _run(entry_point, lambda: body(args), raw, name)
    except PsystockError as exc:
        print(f"{entry_point}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except BaseException as exc:
        stop = stop_behind(exc)
        if stop is not None:  # whatever failed on the way out (the store busy with others stopping)
            print(f"{entry_point}: stopped by {stop.name}", file=sys.stderr)
            sys.exit(128 + stop.signum)
        if not isinstance(exc, Exception) or not server_unreachable(exc):
            raise
        # The run stays RUNNING on the server, so no cache ever takes it for a finished step.
        print(
            f"{entry_point}: error: cannot reach the tracking server at {mlflow.get_tracking_uri()}: "
            "is it running? (MLFLOW_TRACKING_URI names it)",
            file=sys.stderr,
        )
        sys.exit(3)
    finally:
        gc.freeze()


def _run(entry_point: str, work: Callable[[], None], raw: dict[str, str], run_name: Callable[[], str | None]) -> None:
    try:
        active = mlflow.start_run()  # the run `mlflow run` made (MLFLOW_RUN_ID), or a new one
    except MlflowException as exc:
        if server_unreachable(exc):
            raise
        raise PsystockError(f"cannot start a run on {mlflow.get_tracking_uri()}: {exc.message}") from None
    with active as run:
        try:
            log.info("%s: run %s (experiment %s)", entry_point, run.info.run_id, run.info.experiment_id)
            server = forked_from()
            mlflow.set_tags(
                {names.TAG_STEP: entry_point, names.TAG_PROCESS: this_process()}
                | ({names.TAG_FORKED_FROM: server} if server else {})
            )
            if MLFLOW_PARENT_RUN_ID not in run.data.tags:  # a run of its own: its experiment may be new
                mark_model_development(run.info.experiment_id)
            log_params_once(run.info.run_id, raw)
            # A driver names the runs it creates ("main SPY"); any other run is named after its step.
            if names.TAG_PIPELINE not in run.data.tags:
                mlflow.set_tag(MLFLOW_RUN_NAME, run_name() or entry_point)
            work()
            mlflow.log_metric(names.CPU_SECONDS, time.process_time())
        except PsystockError as exc:
            mlflow.set_tag(names.TAG_ERROR, f"{entry_point}: {exc}"[:5000])
            raise
        except BaseException as error:
            stop = stop_behind(error)
            if stop is None:
                raise
            let_go(error)
            # The run ends FAILED, as MLflow ends the run it waits for when Ctrl-C stops it. KILLED
            # would not stay: `mlflow run` marks FAILED every run whose process exits non-zero
            # (its check for a run already ended compares a status's name with status numbers).
            why = f"{entry_point}: stopped by {stop.name}"
            with contextlib.suppress(MlflowException):  # its driver, or `mlflow run`, ends it FAILED
                # MLflow ends an active run as its block is left, and then only the innermost one.
                while (inner := mlflow.active_run()) is not None and inner.info.run_id != run.info.run_id:
                    mlflow.set_tag(names.TAG_ERROR, why)
                    mlflow.end_run(FAILED)
                end_children(run.info.run_id, why)
                MlflowClient().set_tag(run.info.run_id, names.TAG_ERROR, why)
            raise stop from None
        log.info("%s: done", entry_point)


def let_go(error: BaseException) -> None:
    """Let go of what the code ``error`` stopped held: a read of a SQLite store it was in the
    middle of keeps the file locked against every writer, this process's own ending included, for
    as long as its frames live on in the tracebacks of ``error`` and of the errors it chains (a
    frame keeps its function, and a closure what it reads: SQLAlchemy's result, and its cursor)."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        traceback.clear_frames(seen.__traceback__)
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    gc.collect()


def end_children(run_id: str, why: str, tracking_uri: str | None = None) -> None:
    """End FAILED, saying ``why``, the runs under ``run_id`` that a stop left RUNNING: a child run
    (a baseline's, a trial's) begun just as the stop came, before the code that began it could end
    it, or of a step whose process died."""
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    under = f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}' AND attributes.status = '{RUNNING}'"
    for child in client.search_runs([experiment_id], under):
        _end_failed(client, child.info.run_id, why)


def end_stopped(run_id: str, why: str) -> None:
    """End FAILED, saying ``why``, the run of a step stopped before its process could end it."""
    client = MlflowClient()
    if client.get_run(run_id).info.status == RUNNING:
        _end_failed(client, run_id, why)


def _end_failed(client: MlflowClient, run_id: str, why: str) -> None:
    client.set_tag(run_id, names.TAG_ERROR, why)
    client.set_terminated(run_id, FAILED)


def server_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a tracking server that refused, dropped or timed out every retry.

    MLflow wraps the ``requests`` error in an MlflowException; follow the chain.
    """
    import requests

    lost = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, lost):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# What a tracking store's database says when a row with the same key was committed first.
_DUPLICATE_KEY = re.compile(r"UniqueViolation|duplicate key|UNIQUE constraint failed|Duplicate entry", re.IGNORECASE)


def is_duplicate_key(error: MlflowException) -> bool:
    """Whether ``error`` is the tracking store refusing a row another writer committed first."""
    return bool(_DUPLICATE_KEY.search(str(error)))


def mark_model_development(experiment_id: str) -> None:
    """Tag the experiment as model development, what the MLflow UI opens on, unless it is already.

    Pipelines started together on a new experiment all tag it; the store inserts the tag when it
    finds none, so on PostgreSQL all but the first can be refused on its unique key. Those find
    the same tag in place, and go on."""
    client = MlflowClient()
    if client.get_experiment(experiment_id).tags.get(names.EXPERIMENT_KIND) == names.MODEL_DEVELOPMENT:
        return
    try:
        client.set_experiment_tag(experiment_id, names.EXPERIMENT_KIND, names.MODEL_DEVELOPMENT)
    except MlflowException as exc:
        if not is_duplicate_key(exc):
            raise


def log_params_once(run_id: str, params: dict[str, str]) -> None:
    """Log step parameters, skipping those already on the run.

    ``mlflow run`` logs a project's parameters itself (shell-quoted); logging
    them again with a different spelling would be refused, so only the
    missing ones are added.
    """
    existing = MlflowClient().get_run(run_id).data.params
    missing = [Param(k, v) for k, v in params.items() if k not in existing]
    if missing:
        MlflowClient().log_batch(run_id, params=missing)


def get_run(run_id: str) -> Run:
    """The run, or a clear error naming the tracking store."""
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise PsystockError(f"run {run_id} not found on {mlflow.get_tracking_uri()}: {exc.message}") from None


def active_run() -> Run:
    """The step's own run (``run_step`` started it)."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("no active run: call this inside run_step")
    return run


@functools.cache
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


def step_run_tags(
    parent_run_id: str,
    entry_point: str,
    run_name: str,
    project_dir: str,
    project_uri: str = "",
    version: str | None = None,
) -> dict[str, str]:
    """The tags of a run a driver creates for a step: its parent and pipeline, its name, and the
    source ``mlflow run`` would record (the checkout, or a Git URL at ``version``)."""
    if version:
        source = {
            MLFLOW_SOURCE_NAME: project_uri,
            MLFLOW_SOURCE_TYPE: "PROJECT",
            MLFLOW_PROJECT_ENTRY_POINT: entry_point,
            MLFLOW_GIT_REPO_URL: project_uri,
            MLFLOW_GIT_COMMIT: version,
        }
    else:
        source = source_tags(project_dir, entry_point)
    return {
        **source,
        MLFLOW_PARENT_RUN_ID: parent_run_id,
        MLFLOW_RUN_NAME: run_name,
        names.TAG_STEP: entry_point,
        names.TAG_PIPELINE: parent_run_id,
    }


def link_cached_run(
    experiment_id: str,
    parent_run_id: str,
    entry_point: str,
    reused: Run,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """A finished child run of the pipeline that points at the reused step run,
    so the new pipeline's tree shows every step."""
    client = MlflowClient()
    run = client.create_run(
        experiment_id,
        run_name=run_name or f"{entry_point} (cached)",
        tags={
            MLFLOW_PARENT_RUN_ID: parent_run_id,
            names.TAG_PIPELINE: parent_run_id,
            names.TAG_CACHED_STEP: entry_point,
            names.TAG_REUSED_RUN: reused.info.run_id,
            "mlflow.note.content": f"Cache hit: this step reused run {reused.info.run_id} "
            f"({reused.info.run_name}) instead of running again.",
            **(tags or {}),
        },
    )
    link_id: str = run.info.run_id
    client.set_terminated(link_id, FINISHED)
    return link_id


def fail_if_running(run_id: str) -> None:
    """Mark a run FAILED unless it already ended (a step that never started leaves it RUNNING)."""
    client = MlflowClient()
    if client.get_run(run_id).info.status == RUNNING:
        client.set_terminated(run_id, FAILED)


def end_unseen_runs(experiment_id: str) -> list[str]:
    """Mark KILLED, with a tag saying why, every RUNNING run of the experiment whose process ran on
    this host and has ended (a pipeline killed with ``kill -9`` leaves its runs so); their ids."""
    client = MlflowClient()
    running = client.search_runs([experiment_id], f"attributes.status = '{RUNNING}'", max_results=10_000)
    ended = [r for r in running if process_ended(r.data.tags.get(names.TAG_PROCESS, ""))]
    for run in ended:
        process = run.data.tags[names.TAG_PROCESS]
        log.warning(
            "run %s (%s) was left RUNNING by %s, which has ended: KILLED", run.info.run_id, run.info.run_name, process
        )
        client.set_tag(run.info.run_id, names.TAG_ENDED_UNSEEN, f"process {process} ended with the run RUNNING")
        client.set_terminated(run.info.run_id, KILLED)
    return [r.info.run_id for r in ended]


@contextlib.contextmanager
def quiet_run_urls() -> Iterator[None]:
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
