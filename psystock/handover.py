"""A step's side of the warm server (:mod:`psystock.warm`): ``python -m steps.<name>`` hands
itself over to the server, if one serves it, before it imports anything heavy; so does the
``mlflow`` command as ``psystock-mlflow`` (:func:`mlflow_command`).

Only the standard library is imported here: ``steps/__init__.py`` imports this module first, and
every step depends on it (it is part of each step's cache key).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

NAME = "PSYSTOCK_WARM"  # the server's name; `off` starts every step cold
OFF = "off"
PACKAGE = str(Path(__file__).resolve().parent)
STREAMS = (0, 1, 2)  # standard input, output and error
MLFLOW_CLI = "psystock.mlflow_io.cli"  # MLflow's `mlflow` command, as a module
STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}  # what would stop the interpreter: the step's to get


def name() -> str:
    """The server's name: ``PSYSTOCK_WARM``, or one for this user, interpreter and psystock folder."""
    given = os.environ.get(NAME, "")
    if given:
        return given
    key = hashlib.sha256(f"{sys.executable}\0{PACKAGE}".encode()).hexdigest()[:16]
    return f"{os.getuid()}-{key}"


def address(server: str) -> str:
    return f"\0psystock-warm-{server}"


def connect(server: str, timeout: float | None = None) -> socket.socket:
    """A connection to the server named ``server``, if one of this user's listens there (an abstract
    socket's name is anyone's to take: a step's environment goes to its own user's server only)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(timeout)
        client.connect(address(server))
        client.settimeout(None)
        if peer_uid(client) != os.getuid():
            raise ConnectionRefusedError(f"the warm server {server} is another user's")
    except OSError:
        client.close()
        raise
    return client


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", credentials)[1])


def send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def receive(reader: Any) -> dict[str, Any]:
    line = reader.readline()
    if not line:
        raise ConnectionError("the warm server closed the connection")
    message: dict[str, Any] = json.loads(line)
    return message


def handed_module() -> tuple[str, list[str]] | None:
    """The step module and arguments of this interpreter's command line, if it is a plain
    ``python -m steps.<name> ...`` (interpreter options, such as ``-u``, keep it cold)."""
    argv = getattr(sys, "orig_argv", [])
    if len(argv) < 3 or argv[1] != "-m" or not argv[2].startswith("steps."):
        return None
    return argv[2], list(argv[3:])


def hand_over() -> None:
    """Run this interpreter's step in the warm server, if one serves it, and exit with the step's
    status; return at once (the step runs here, cold) if none does. Called by ``steps/__init__.py``
    before a step imports anything heavy."""
    command = handed_module()
    if command is not None:
        _hand_over(*command)


def mlflow_command() -> None:
    """``psystock-mlflow``: MLflow's own ``mlflow`` command, with the same arguments, handed over to
    the warm server if one serves it (MLflow is imported there already, so the command starts at
    once, and ``mlflow run`` then hands its step over too); run here, as ``mlflow`` runs, if not."""
    args = sys.argv[1:]
    _hand_over(MLFLOW_CLI, args, "command")
    import runpy

    sys.argv = ["mlflow", *args]
    runpy.run_module(MLFLOW_CLI, run_name="__main__", alter_sys=True)


def _hand_over(module: str, args: list[str], what: str = "step") -> None:
    """Run ``python -m <module> <args>`` in the warm server and exit as it exits, or return."""
    if os.environ.get(NAME) == OFF or sys.platform != "linux":
        return
    try:
        connection = connect(name())
    except OSError:
        return  # no server: start cold
    # A stop that comes before the step's pid does waits, and is then passed on to the step.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    with connection, connection.makefile("rb") as reader:
        try:
            socket.send_fds(connection, [b"s"], list(STREAMS))
            send(connection, _request(module, args))
            answer = receive(reader)
        except (OSError, ValueError):
            answer = {"refused": "no answer"}
        if "refused" in answer:
            if answer.get("say"):
                print(f"psystock: {answer['refused']}; this {what} starts cold", file=sys.stderr, flush=True)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
            return
        _wait_for(int(answer["pid"]), reader)


def _request(module: str, args: list[str]) -> dict[str, Any]:
    return {
        "module": module,
        "args": args,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "executable": sys.executable,
        "package": PACKAGE,
        "path": sys.path,
    }


def _wait_for(pid: int, reader: Any) -> None:
    """Pass the signals that would stop this interpreter on to the step, and exit as it exits."""

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in STOPS:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    try:
        code = int(receive(reader)["exit"])
    except (OSError, ValueError, KeyError):
        print("psystock: the warm server ended before the step did", file=sys.stderr, flush=True)
        os._exit(1)
    if code < 0:  # ended by a signal: end so too
        with contextlib.suppress(OSError):  # SIGKILL's action is the default one already
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        os._exit(128 - code)
    os._exit(code)
