"""psystock: an MLflow experiment pipeline for next-day stock direction models."""

import os
import socket

__version__ = "0.1.0"


class PsystockError(ValueError):
    """A problem with the user's input that a step reports as one readable line."""


def this_process() -> str:
    """``host:pid``: which process created a run or ran a trial."""
    return f"{socket.gethostname()}:{os.getpid()}"


_forked_from = ""


def forked_from() -> str:
    """``host:pid`` of the step server this process was forked from (:mod:`psystock.forking`);
    empty in any other process."""
    return _forked_from


def mark_forked_from(server_pid: int) -> None:
    """Record, in a step's process as it starts, the step server it was forked from."""
    global _forked_from
    _forked_from = f"{socket.gethostname()}:{server_pid}"


def local_pid(process: str) -> int | None:
    """The process id of ``process`` (``host:pid``, as :func:`this_process` writes it) if it ran on
    this host; None for another host's process, or no ``host:pid``."""
    host, _, pid = process.rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def process_ended(process: str) -> bool:
    """Whether ``process`` (``host:pid``) ran on this host and has ended (a zombie has). Another
    host's process, or no ``host:pid``, is not known to have."""
    pid = local_pid(process)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def signal_process(process: str, signum: int) -> bool:
    """Send ``signum`` to ``process`` (``host:pid``) if it runs on this host; whether it was sent."""
    pid = local_pid(process)
    if pid is None:
        return False
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True
