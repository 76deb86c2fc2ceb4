"""The warm server: ``python -m steps.<name>`` started anew (a step run alone with ``mlflow run -e
<name>``, ``main`` itself) hands itself over to it and costs its own work, not a Python start-up.

``make warm`` (``python -m psystock.warm start``) starts the server in the background: it holds
the step servers of :mod:`psystock.forking` (MLflow, pandas, scikit-learn, and each family's
framework, imported once). A step's new interpreter imports nothing heavy: its package
(``steps/__init__.py``) calls :func:`hand_over` first, which sends the step's command line,
environment, working directory and standard streams to the server and waits. The server forks
the step from the step server its entry point needs, as ``main`` forks its steps, and tells the
interpreter the step's exit status, which it exits with. The step is the same module run in a
process of its own with the interpreter's environment, working directory and streams, its own
run; Ctrl-C or SIGTERM sent to the interpreter reaches it, and if the interpreter is killed the
step is stopped (SIGTERM) and ends its run.

A step starts cold, as before, when no server answers, when ``PSYSTOCK_WARM`` is ``off`` (as
``main`` sets it for its steps with ``launcher=subprocess``), or when the server would run other
code: it serves only interpreters of its own Python, with its Python settings (``PYTHONPATH``,
...) and ``sys.path``, that import psystock from the folder it imported it from, and it stops
itself once any of psystock's source files, or the folders of installed packages, changed since
it started (``make warm`` starts it anew). It ends after ``PSYSTOCK_WARM_IDLE`` minutes without
a step (30 by default) or on ``make cold``.

The step's side is :mod:`psystock.handover`. The server listens on a Linux abstract socket named
after the user, the interpreter and psystock's folder (or ``PSYSTOCK_WARM``): nothing on disk;
each end checks that the other is its own user's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from psystock import PsystockError, process_ended
from psystock.handover import PACKAGE, STREAMS, address, connect, name, peer_uid, receive, send

IDLE = "PSYSTOCK_WARM_IDLE"  # minutes without a step after which the server ends
DEFAULT_IDLE_MINUTES = 30.0


# --- serving steps -------------------------------------------------------------------------------


def _sources() -> dict[str, int]:
    """psystock's source files and the folders of installed packages (an install or removal
    changes them), each with its modification time."""
    found = {str(path): path.stat().st_mtime_ns for path in sorted(Path(PACKAGE).rglob("*.py"))}
    for folder in sys.path[1:]:
        with contextlib.suppress(OSError):
            found[folder] = os.stat(folder).st_mtime_ns
    return found


def _python_settings(env: dict[str, str]) -> dict[str, str]:
    """The variables an interpreter reads as it starts (``PYTHONPATH``, ``PYTHONHASHSEED``, ...)."""
    return {key: value for key, value in env.items() if key.startswith("PYTHON")}


class Server:
    """The warm server's state: its step servers, the steps it is running, when it last served."""

    def __init__(self, server_name: str, idle_seconds: float):
        self.name, self.idle_seconds = server_name, idle_seconds
        self.sources = _sources()
        self.started = time.time()
        self.launched = 0
        self.running = 0
        self.last = time.monotonic()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def idle(self) -> bool:
        """Whether no step has run for its idle time."""
        with self.lock:
            return self.running == 0 and time.monotonic() - self.last > self.idle_seconds

    def changed_source(self) -> str | None:
        now = _sources()
        changed = sorted(set(now.items()) ^ set(self.sources.items()))
        return changed[0][0] if changed else None

    def refusal(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request.get("executable") != sys.executable:
            return {"refused": f"the warm server runs {sys.executable}, not {request.get('executable')}"}
        if request.get("package") != PACKAGE:
            return {"refused": f"the warm server runs psystock from {PACKAGE}, not {request.get('package')}"}
        if _python_settings(request.get("env", {})) != _python_settings(dict(os.environ)):
            return {"refused": "the step's Python settings (PYTHONPATH, ...) are not the warm server's", "say": True}
        if list(request.get("path", []))[1:] != sys.path[1:]:
            return {"refused": "the step's sys.path is not the warm server's", "say": True}
        changed = self.changed_source()
        if changed is not None:
            self.stopping.set()
            return {
                "refused": f"the warm server stopped: {changed} changed since it started (make warm starts it anew)",
                "say": True,
            }
        if self.stopping.is_set():
            return {"refused": "the warm server is stopping"}
        return None


def serve(server_name: str, idle_seconds: float) -> None:
    """The warm server's process: start the step servers, then serve until stopped, idle, or stale.

    It first forks and leaves the fork to serve, in a session of its own: the command that
    started it ends at once, and the server is nobody's child to reap. Once it listens, it lets go
    of the standard streams it was started with: the starting command, which reads its error
    output, then knows that it did not fail to start."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    from psystock import forking
    from psystock.models import all_families

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address(server_name))
    except OSError:
        sys.exit(f"a warm server named {server_name} is already running")
    listener.listen(64)
    listener.settimeout(1.0)
    quiet = os.open(os.devnull, os.O_RDWR)
    for stream in STREAMS:
        os.dup2(quiet, stream)
    os.close(quiet)
    state = Server(server_name, idle_seconds)
    forking.warm_up({info.preload for info in all_families().values() if info.preload} | {forking.STEP_PRELOAD})
    forking.server().ensure_running()
    state.last = time.monotonic()  # idle from now, not from before its servers started
    try:
        while not state.stopping.is_set() and not state.idle():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_serve_one, args=(state, connection), daemon=True).start()
    finally:
        listener.close()
        while True:  # the steps it runs end first: their exit statuses come through their servers
            with state.lock:
                if state.running == 0:
                    break
            time.sleep(0.1)
        forking.stop_servers()


def _serve_one(state: Server, connection: socket.socket) -> None:
    with connection, connection.makefile("rb") as reader:
        if peer_uid(connection) != os.getuid():
            return
        try:
            _, fds, _, _ = socket.recv_fds(connection, 1, len(STREAMS))
        except OSError:
            return
        try:
            request = receive(reader)
            _answer(state, connection, request, fds)
        except (OSError, ValueError):
            pass
        finally:
            for fd in fds:
                os.close(fd)


def _answer(state: Server, connection: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    if "control" in request:
        _control(state, connection, request["control"])
        return
    refusal = state.refusal(request) or (None if len(fds) == len(STREAMS) else {"refused": "no standard streams"})
    if refusal is not None:
        send(connection, refusal)
        return
    with state.lock:
        state.running += 1
        state.launched += 1
    try:
        _run_step(connection, request, fds)
    finally:
        with state.lock:
            state.running -= 1
            state.last = time.monotonic()  # idle from the end of its last step (a status is no step)


def _control(state: Server, connection: socket.socket, what: str) -> None:
    with state.lock:
        status = {
            "pid": os.getpid(),
            "name": state.name,
            "package": PACKAGE,
            "executable": sys.executable,
            "started": state.started,
            "launched": state.launched,
            "running": state.running,
        }
    if what == "stop":
        state.stopping.set()
    send(connection, status)


def _run_step(connection: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Fork the step, tell its pid, wait for it (stopping it if the interpreter goes), tell its status."""
    from multiprocessing import connection as waiting

    from psystock import forking

    module, args = str(request["module"]), [str(arg) for arg in request["args"]]
    entry_point = module.removeprefix("steps.")
    env = {str(key): str(value) for key, value in request["env"].items()} | forking.lent_servers()
    process = forking.StepProcess(
        forking.preload_of(entry_point, _named_params(args)),
        target=_step,
        args=(str(request["cwd"]), module, args, env, list(request["path"]), forking.Inherited(fds)),
    )
    process.start()
    pid = int(process.pid or 0)
    send(connection, {"pid": pid})
    while process.exitcode is None:
        ready = waiting.wait([process.sentinel, connection])
        if connection in ready and process.sentinel not in ready:  # the interpreter is gone
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            process.join()
            return
        process.join(0)
    process.join()
    send(connection, {"exit": process.exitcode})


def _named_params(args: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a step's command line (the entry points' commands give them so)."""
    return {key.removeprefix("--"): value for key, value in zip(args[::2], args[1::2], strict=False)}


def _step(cwd: str, module: str, args: list[str], env: dict[str, str], path: list[str], fds: list[int]) -> None:
    """The forked step: the interpreter's ``sys.path`` and standard streams, then the module as that
    interpreter would run it."""
    from psystock import forking

    sys.path[:] = path[1:]  # run_module puts the working directory first, as `python -m` did
    forking.run_module(cwd, module, args, env, fds)


# --- the commands --------------------------------------------------------------------------------


def _idle_seconds() -> float:
    given = os.environ.get(IDLE, "")
    try:
        minutes = float(given) if given else DEFAULT_IDLE_MINUTES
    except ValueError:
        raise PsystockError(f"{IDLE} must be a number of minutes, got {given!r}") from None
    if minutes <= 0:
        raise PsystockError(f"{IDLE} must be more than 0 minutes, got {given!r}")
    return minutes * 60


def status(server_name: str | None = None, timeout: float = 5.0) -> dict[str, Any] | None:
    """The running server's pid, name, folder, start time and steps launched and running; None if none answers."""
    return _control_request(server_name or name(), "status", timeout)


def _control_request(server_name: str, what: str, timeout: float) -> dict[str, Any] | None:
    try:
        connection = connect(server_name, timeout)
    except OSError:
        return None
    with connection, connection.makefile("rb") as reader:
        try:
            socket.send_fds(connection, [b"c"], [])
            send(connection, {"control": what})
            connection.settimeout(timeout)
            return receive(reader)
        except (OSError, ValueError):
            return None


def start(wait_seconds: float = 120.0) -> dict[str, Any]:
    """Start the server in the background, unless one runs; return its status once it answers."""
    import subprocess

    if sys.platform != "linux":
        raise PsystockError("the warm server needs Linux (its socket is in Linux's abstract namespace)")
    server_name, idle = name(), _idle_seconds()
    running = status(server_name)
    if running is not None:
        return running
    starting = subprocess.run(
        [sys.executable, "-m", "psystock.warm", "serve", server_name, str(idle)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # read to its end: the server's error, or nothing once it listens
        cwd=os.path.dirname(PACKAGE),
        timeout=wait_seconds,
        text=True,
    )
    if starting.returncode != 0 or starting.stderr.strip():
        raise PsystockError(f"the warm server did not start: {starting.stderr.strip()}")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:  # it answers once its step servers have started
        answer = status(server_name, timeout=1.0)
        if answer is not None:
            return answer
        try:
            connect(server_name).close()  # it listens from the moment it started
        except OSError:
            raise PsystockError("the warm server ended while it started its step servers") from None
        time.sleep(0.1)
    raise PsystockError(f"the warm server did not answer within {wait_seconds:.0f} s")


def stop(server_name: str | None = None, wait_seconds: float = 600.0) -> bool:
    """Ask the server to stop and wait until it has (the steps it runs end first); False if none ran."""
    server_name = server_name or name()
    answer = _control_request(server_name, "stop", 5.0)
    if answer is None:
        return False
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process_ended(f"{socket.gethostname()}:{answer['pid']}"):
            return True
        time.sleep(0.05)
    raise PsystockError(f"the warm server (pid {answer['pid']}) did not stop within {wait_seconds:.0f} s")


def _describe(answer: dict[str, Any]) -> str:
    since = time.strftime("%H:%M:%S", time.localtime(answer["started"]))
    return (
        f"warm server {answer['name']} (pid {answer['pid']}, since {since}): steps of psystock in "
        f"{os.path.dirname(answer['package'])} with {answer['executable']} start warm; "
        f"{answer['launched']} launched, {answer['running']} running"
    )


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    try:
        if command == "serve":
            serve(argv[1], float(argv[2]))
        elif command == "start":
            print(_describe(start()))
            print(f"it ends after {_idle_seconds() / 60:g} idle minutes, or on `make cold`")
        elif command == "stop":
            print("warm server stopped" if stop() else "no warm server was running")
        elif command == "status":
            found = status()
            print(_describe(found) if found else "no warm server is running: steps start cold (make warm starts one)")
        else:
            print(f"usage: python -m psystock.warm start|stop|status, got {command!r}", file=sys.stderr)
            return 2
    except PsystockError as exc:
        print(f"warm: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
