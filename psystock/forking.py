"""Warm step processes: forked from servers that have already imported MLflow, pandas and
scikit-learn, and for a family that names more (:attr:`psystock.models.FamilyInfo.preload`;
Keras: TensorFlow), from a server of its own that has imported those too.

The servers are Python's ``multiprocessing`` forkservers, one for each set of preloads, ended
as the driver (``main``) that started them exits. The plain server, a new interpreter, imports
:data:`PRELOAD`; the others are forked from it (:class:`_ForkedServer`) and import only their own
modules: a family's server its family's, the steps' server (every other step) :data:`STEP_PRELOAD`.
This module imports neither MLflow nor pandas, so ``main`` starts the plain server first thing
(:func:`warm_up_driver`), to import while it does; the others start as its first step launches,
the families' to import while the steps before their training run (a pipeline whose steps are all
cached starts none). A server not started so starts with its first step.
:mod:`psystock.mlflow_io.forkserver` is the MLflow project backend that launches steps here."""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import runpy
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from multiprocessing import connection, forkserver, popen_forkserver, reduction, resource_tracker
from multiprocessing.context import ForkServerProcess
from typing import Any

from psystock import mark_forked_from
from psystock.handover import STREAMS
from psystock.names import FORKSERVER

# What every step imports before it does anything: a few seconds of each process's start-up.
# Frameworks with thread pools of their own (XGBoost, LightGBM) are left to the steps; TensorFlow
# starts none at import, and its family preloads it in a server of its own.
PRELOAD = (
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "mlflow.data.pandas_dataset",
    "pandas",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "scipy.stats",
    "matplotlib.pyplot",
    "hyperopt",
    "psystock.mlflow_io.warm_imports",
    "psystock.protocol",  # every training, baselines, tune and register: arch and statsmodels
)

# What the steps of a family without a server of its own, and of no family, also import: skops,
# the format mlflow.sklearn saves models in (0.6 s). Keras steps never read it, so their server,
# forked from the plain one beside this one's, has TensorFlow imported that much sooner.
STEP_PRELOAD = ("skops.io",)

# In the environment of a process a driver forks: the driver's servers, which it may fork from too.
LENT_SERVERS = "PSYSTOCK_LENT_SERVERS"

_servers: dict[tuple[str, ...], _Server] = {}
_servers_lock = threading.Lock()
# The server a launch in this thread asks for its process (see _connect).
_launching = threading.local()


def server(extra: tuple[str, ...] = ()) -> forkserver.ForkServer:
    """This process's forkserver that has imported :data:`PRELOAD` and ``extra``; one for each
    ``extra``, made on first use (it starts on :func:`warm_up_driver` or with its first step).
    A server with ``extra`` modules is forked from the plain one (:class:`_ForkedServer`); in a
    process forked by a driver that lent its servers, the driver's own (:class:`_Lent`)."""
    with _servers_lock:
        if not _servers:
            atexit.register(stop_servers)
        if extra not in _servers:
            _servers[extra] = _lent(extra) or (_ForkedServer(extra) if extra else _Server())
            _servers[extra].set_forkserver_preload([*PRELOAD, *extra])
        return _servers[extra]


def lent_servers() -> dict[str, str]:
    """The environment that lends this process's running servers to a process it forks from one of
    them: that process's steps fork from the same servers (:func:`server`)."""
    with _servers_lock:
        running = {
            ",".join(extra): [started._forkserver_address, started._forkserver_pid]  # type: ignore[attr-defined]
            for extra, started in _servers.items()
            if started._forkserver_pid is not None  # type: ignore[attr-defined]
        }
    return {LENT_SERVERS: json.dumps(running)} if running else {}


def _lent(extra: tuple[str, ...]) -> _Lent | None:
    """The server lent for ``extra`` by the driver that forked this process, if any: only a process
    whose parent is one of the lent servers takes them (a variable inherited by any other process,
    a new interpreter, means nothing to it)."""
    lent = {tuple(filter(None, key.split(","))): (address, pid) for key, (address, pid) in _lent_servers().items()}
    forked_with = forkserver._forkserver._forkserver_alive_fd  # type: ignore[attr-defined]  # not in typeshed
    if extra not in lent or forked_with is None or os.getppid() not in {pid for _, pid in lent.values()}:
        return None
    return _Lent(*lent[extra], forked_with)


def _lent_servers() -> dict[str, list[Any]]:
    try:
        lent = json.loads(os.environ.get(LENT_SERVERS) or "{}")
    except ValueError:
        return {}
    return lent if isinstance(lent, dict) else {}


def stop_servers() -> None:
    """End this process's servers now, run when it exits: its steps are over by then. A server
    left to notice that its driver is gone would first finish its imports (a driver whose steps
    were all cached, or that refused its parameters, ends within them), taking a core from
    whatever runs next. The servers forked from the plain one end first, while it lives to reap
    them."""
    with _servers_lock:
        for started in sorted(_servers.values(), key=lambda s: not isinstance(s, _ForkedServer)):
            started.stop()
        _servers.clear()


class _Server(forkserver.ForkServer):
    """multiprocessing's forkserver, a new interpreter, that can be ended at once. Ctrl-C, which
    reaches every process of the terminal's job, does not interrupt it, not even while it imports:
    its driver stops it."""

    def ensure_running(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            super().ensure_running()
            return
        # An interpreter started with SIGINT ignored keeps ignoring it; only the server's start is
        # without Ctrl-C here.
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            super().ensure_running()
        finally:
            signal.signal(signal.SIGINT, before)

    def stop(self) -> None:
        """End the server now, whatever it is doing, and reap it."""
        if self._forkserver_pid is not None:  # type: ignore[attr-defined]  # not in typeshed
            os.kill(self._forkserver_pid, signal.SIGTERM)  # type: ignore[attr-defined]
            self._stop()  # type: ignore[attr-defined]


class _Lent(_Server):
    """A server of the driver that forked this process: this process's steps fork from it, as the
    driver's own do. It is the driver's to end, so :meth:`stop` leaves it running. A process forked
    from it gets the "alive" pipe's write end this process was forked with."""

    def __init__(self, address: str, pid: int, alive_fd: int):
        super().__init__()
        self._forkserver_address, self._forkserver_pid = address, pid
        self._forkserver_alive_fd = alive_fd

    def ensure_running(self) -> None:
        resource_tracker.ensure_running()  # the driver's, inherited with the fork

    def stop(self) -> None:
        """Not this process's to end."""


class _ForkedServer(_Server):
    """A forkserver forked from the plain server, which has already imported :data:`PRELOAD`: it
    imports only its ``extra`` modules (Keras: TensorFlow, about 2.3 s) where a server started as
    a new interpreter would import everything again (about 6.6 s). It asks the plain server for
    its process as a step does, then serves as multiprocessing's own servers do, on a listening
    socket and an "alive" socket pair made here: it ends when this process closes its end of the
    pair, or on :meth:`stop`.

    It runs with this process's ``sys.path``, working directory and environment as of its start,
    as a server started as a new interpreter would."""

    def __init__(self, extra: tuple[str, ...]):
        super().__init__()
        self._extra = extra
        self._process: ForkServerProcess | None = None
        # multiprocessing's names for where a client finds the server (not in typeshed)
        self._forkserver_address: str | None = None
        self._forkserver_alive_fd: int | None = None
        self._forkserver_pid: int | None = None

    def ensure_running(self) -> None:
        with self._lock:  # type: ignore[attr-defined]  # not in typeshed
            resource_tracker.ensure_running()
            if self._process is not None and self._process.is_alive():
                return
            self._close()
            listener = socket.socket(socket.AF_UNIX)
            alive_r, alive_w = socket.socketpair()
            try:
                address = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
                listener.bind(address)
                listener.listen()
                process = StepProcess(
                    (),
                    target=_serve,
                    args=(listener, alive_r, list(self._extra), list(sys.path), os.getcwd(), dict(os.environ)),
                    daemon=True,
                )
                process.start()
            except BaseException:
                alive_w.close()
                raise
            finally:
                listener.close()
                alive_r.close()
            self._forkserver_address = address
            self._forkserver_alive_fd = alive_w.detach()
            self._forkserver_pid = process.pid
            self._process = process

    def stop(self) -> None:
        """End the server now, whatever it is doing, and wait for it to be gone."""
        with self._lock:  # type: ignore[attr-defined]
            if self._process is not None and self._process.exitcode is None:
                self._process.terminate()
            self._close()

    def _stop(self) -> None:  # multiprocessing's name; its own would wait for a child it lacks
        self.stop()

    def _close(self) -> None:
        if self._process is not None:
            self._process.join()
            self._process = None
        if self._forkserver_alive_fd is not None:
            os.close(self._forkserver_alive_fd)
        self._forkserver_address, self._forkserver_alive_fd, self._forkserver_pid = None, None, None


def _serve(
    listener: socket.socket, alive: socket.socket, extra: list[str], path: list[str], cwd: str, env: dict[str, str]
) -> None:
    """The body of a :class:`_ForkedServer`'s process. Ctrl-C, which reaches every process of
    the terminal's job, does not interrupt it, not even while it imports: its driver stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.path[:] = path
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    forkserver.main(listener.detach(), alive.detach(), extra)


def warm_up_driver(argv: list[str]) -> None:
    """Start the plain server now if a driver's command line (``main``'s: its entry point's
    command gives every parameter) says its steps fork warm: it imports while the driver does."""
    parser = argparse.ArgumentParser(add_help=False)
    for name in ("--launcher", "--env_manager"):
        parser.add_argument(name, default="")
    given, _ = parser.parse_known_args(argv)
    if given.launcher == FORKSERVER and given.env_manager == "local":
        server().ensure_running()


def warm_up(preloads: set[tuple[str, ...]]) -> None:
    """Start the servers that also import each of ``preloads``, now: the families' first, whose
    imports (TensorFlow) keep their training waiting longest."""
    for extra in sorted(preloads, key=lambda extra: (extra == STEP_PRELOAD, extra)):
        server(extra).ensure_running()


def preload_of(entry_point: str, params: dict[str, Any]) -> tuple[str, ...]:
    """The modules a step's server preloads besides :data:`PRELOAD`: its family's
    (:attr:`psystock.models.FamilyInfo.preload`; the family of ``train_<family>``, or of a
    ``family`` parameter), or :data:`STEP_PRELOAD` for a family that names none, any other step,
    or a family this process does not know."""
    from psystock.models import all_families

    name = str(params.get("family") or "") or entry_point.removeprefix("train_")
    info = all_families().get(name)
    return info.preload if info is not None and info.preload else STEP_PRELOAD


def _connect(fds: Sequence[int]) -> tuple[int, int]:
    """multiprocessing's forkserver Popen asks its module's one server for a new process; this, put
    in that server's place, asks the server of the step this thread is launching, if any. Launches
    in other threads go on meanwhile: one may wait for a server that is still importing."""
    chosen = getattr(_launching, "server", None) or _default_server
    return chosen.connect_to_new_process(fds)


_default_server = forkserver._forkserver
forkserver.connect_to_new_process = _connect


class _Popen(popen_forkserver.Popen):
    def __init__(self, process_obj: Any):
        self._reading = threading.Lock()
        super().__init__(process_obj)

    def poll(self, flag: int = os.WNOHANG) -> int | None:
        """multiprocessing's, but one thread at a time reads the exit status the server sends
        (CPython gh-130895). A step's thread waits in ``join`` while another thread starts the
        next step, and ``Process.start`` first polls every child; of two threads that both see the
        status arrive, the one that finds it already read would take the process to have exited
        with status 255, and a step that finished would be called failed."""
        if self.returncode is None and flag != os.WNOHANG:
            connection.wait([self.sentinel])  # block outside the lock: a poll beside it must not
        with self._reading:
            returncode: int | None = super().poll(os.WNOHANG)
        return returncode

    def _launch(self, process_obj: Any) -> None:
        _launching.server = server(process_obj.preload)
        try:
            super()._launch(process_obj)  # type: ignore[misc]  # typeshed omits it
        finally:
            _launching.server = None


class StepProcess(ForkServerProcess):
    """A step's process, forked from the server that preloads ``preload`` as well."""

    def __init__(self, preload: tuple[str, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.preload = preload

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 -- multiprocessing's name
        return _Popen(process_obj)


def run_module(work_dir: str, module: str, args: list[str], env: dict[str, str], streams: Sequence[int] = ()) -> None:
    """The body of a step's process: ``python -m module args`` in ``work_dir`` with ``env``, and
    ``streams`` (its launcher's standard input, output and error, :class:`Inherited`) as its own,
    as a new interpreter would have them; without them, its server's."""
    if streams:
        adopt_streams(streams)
    # Its server ignores Ctrl-C (its driver stops it); the step stops as `python -m` would.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mark_forked_from(os.getppid())
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # found again from TMPDIR, as a new interpreter finds it
    os.chdir(work_dir)
    sys.path.insert(0, work_dir)  # as `python -m` puts the working directory first
    logging.getLogger().handlers.clear()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def adopt_streams(fds: Sequence[int]) -> None:
    """Make ``fds`` this process's standard input, output and error, buffered as a new interpreter
    buffers them (output line by line on a terminal); ``fds`` are closed."""
    for target, fd in zip(STREAMS, fds, strict=True):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 -- the process's own streams
    sys.stdout = open(1, "w", closefd=False, buffering=1 if os.isatty(1) else -1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115


class Inherited:
    """File descriptors for a process forked from a step server, among its arguments: each arrives
    as a descriptor of that process's own (multiprocessing passes them as it passes a socket), and
    the argument as a list of them."""

    def __init__(self, fds: Sequence[int]):
        self.fds = list(fds)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _inherited, ([reduction.DupFd(fd) for fd in self.fds],)


def _inherited(duplicates: list[Any]) -> list[int]:
    return [duplicate.detach() for duplicate in duplicates]
